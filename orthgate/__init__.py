"""orthgate: Orthanc on AWS with secure device connectivity.

The public Python surface for operators and other tools. The Pulumi components themselves
are in ``orthgate.components`` (``components/`` in a checkout).
"""
