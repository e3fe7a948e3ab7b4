"""OrthancServer and the parts it is made of, one module per job."""

from orthgate.components.orthanc.server import Monitored, OrthancServer, OrthancServerArgs

__all__ = ["Monitored", "OrthancServer", "OrthancServerArgs"]
