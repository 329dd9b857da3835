"""The soak: thousands of random fault schedules over several streams, with everything running.

Each schedule (:mod:`tests.soak.plan`, drawn from one seed) arms the fault proxy
(:class:`s3es.testing.FaultProxy`) with rules that fault PUTs, GETs, LISTs or any request, of
one stream or of all, and runs lanes of steps side by side, one thread per lane: writers'
commands on several streams, projector passes (a full-scan projector and a change-feed one),
compactions and deletions, and at times a writer *process* killed with SIGKILL while the answer
to its PUT is held. Then :mod:`tests.soak.run` checks, fault-free and straight from the
embedded S3 server, what must hold whatever the faults: every acknowledged command stored
exactly once, as acknowledged; versions gapless; a load equals a full replay; read models equal
a fold of every event; deleted streams read as deleted; nothing lost or doubled.

``make soak`` runs ``python -m tests.soak`` (1,000 schedules and more); ``tests/test_soak.py``
runs a few dozen in ``make test``. A failing schedule prints its seed and plan;
``python -m tests.soak --replay SEED`` runs it again (the plan is the same; the interleaving
of its lanes, when it has several, may differ).
"""
