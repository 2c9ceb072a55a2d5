"""The torch side of distillgen. Nothing outside engine/ and zoo/ imports torch, and nothing
imports engine/ at module level: a build whose figures are all cached never loads torch."""
