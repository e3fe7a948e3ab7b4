"""orthgate's Pulumi program. The composition lives in components/stack.py."""

from components.stack import program

program()
