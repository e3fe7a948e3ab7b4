"""Renderers: pure functions from plain values to the text a machine reads.

No Pulumi here. Components call these inside ``Output.apply``; tests call the same
functions to start real Orthanc, nginx, dcmtk and OpenVPN.
"""
