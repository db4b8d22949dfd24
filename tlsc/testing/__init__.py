"""tlsc's backend conformance harness (spec section 5: "the conformance harness is what proves it").

Ships in the core wheel so that a third-party backend can prove itself with the
very battery the bundled backends pass.  Nothing here is imported by ``tlsc``
itself, and the submodules import ``cryptography``/``pyOpenSSL``/``pytest``
only when used: a production install never pays for them.

* :mod:`.certs`     -- a certificate factory (keys generated once per process);
* :mod:`.pathcases` -- the path-validation battery: cases with expected verdicts;
* :mod:`.memory`    -- handshake checks against an in-memory pyOpenSSL server;
* :mod:`.live`      -- handshake checks over real sockets against real servers;
* :mod:`.duplex`    -- no byte lost: real tlsc/tlsd, data both ways, one side ending first;
* :mod:`.harness`   -- runs batteries over backends and builds the result matrix;
* :mod:`.suite`     -- :class:`BackendConformance`, the pytest base class;
* :mod:`.plugin`    -- the pytest plugin (``tlsc_backend`` fixture, ``--tlsc-backend``).
"""
