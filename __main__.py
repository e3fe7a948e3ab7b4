"""orthgate's Pulumi program. The composition lives in components/stack.py."""

from orthgate.components.stack import program

program()
