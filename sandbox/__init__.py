"""The sandbox: everything that is not the production broker. The journal and subscriber
simulators, the stack supervisor behind ``make run`` (Tansu, or Apache Kafka assembled from
Maven Central, with test certificates), the scenarios the tests and demos drive, the attack
probe and the vendors' contract validator. The production image holds ``services/`` (the
three services and the migrations) and none of this."""
