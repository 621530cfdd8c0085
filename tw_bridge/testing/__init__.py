"""Test helpers shipped with tw_bridge (see :mod:`tw_bridge.testing.falcon`)."""
