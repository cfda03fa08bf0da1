"""Tests of the web dashboard (jobify.dashboard, ``jobify dashboard``)."""
