"""genforge.geo: under construction (see the issue tracker); registered as a suite once it passes the suite contract."""
