"""Operator tools around a deployed orthgate stack."""
