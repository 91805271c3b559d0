"""Routing and delivery: the delivery log and its state machine, dispatch in order,
the circuit per destination, replay, the cancels relation (a makulering goes where the
message it cancels went and stops what of it is undelivered), the watchdog's timers and the
clock they run on."""
