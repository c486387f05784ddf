"""The flow-matching maths: the SD3 sigma schedule, the SDE step with its log-prob, the ODE step, the sampler."""
