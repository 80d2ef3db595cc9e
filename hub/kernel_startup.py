"""IPython startup file of every Lightbox kernel: audit what is opened, purge at exit.

Copied by the hub into ``~/.ipython/profile_default/startup/``. Kernels are separate
processes and viewerlib's caches live in them, so this is where the purge must run;
its receipt, and the UIDs of every series opened, go to the hub's audit log.
viewerlib is imported here, at kernel start, so that nothing opened in the very first
cell escapes the audit.
"""


def _lightbox_session() -> None:
    import atexit
    import secrets

    import viewerlib
    import viewerlib.cache
    import viewerlib.events

    # Names this kernel in its reports, so the hub can tell, when the server stops,
    # whether a kernel that opened series sent its purge receipt.
    session = secrets.token_hex(8)

    def report(event: str, **fields: object) -> None:
        fields["session"] = session
        try:
            from lightbox_hub.audit_client import report as send

            send(event, **fields)
        except Exception:  # a lost audit record must never break the notebook
            pass

    def report_opened(study_instance_uid: str, series_instance_uid: str) -> None:
        report("study-opened", study_instance_uid=study_instance_uid,
               series_instance_uid=series_instance_uid)

    def purge_and_report() -> None:
        receipt = viewerlib.purge()
        report("purge", kinds=list(receipt.kinds), items=int(receipt.items),
               bytes=int(receipt.bytes), where="kernel")

    # viewerlib purges at exit on its own; this purge also sends the receipt.
    atexit.unregister(viewerlib.cache.purge)
    atexit.register(purge_and_report)
    viewerlib.events.on_series_opened(report_opened)


_lightbox_session()
del _lightbox_session
