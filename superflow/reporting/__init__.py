"""Tables and figures from finished runs: what the workflow's table and figure rules call."""
