"""Grading homework: cases and checks (:mod:`.cases`); the sandbox, the worker and the grader build on them."""
