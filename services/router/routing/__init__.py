"""Routing and delivery: the delivery log and its state machine, dispatch in order,
the circuit per destination, replay, the watchdog's timers and the clock they run on."""
