"""orthgate: Orthanc on AWS with secure device connectivity, as Pulumi components."""
