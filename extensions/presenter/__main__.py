"""``python -m lightbox_extensions.presenter``: run the relay (JupyterHub starts it)."""
from lightbox_extensions.presenter.relay import RelayApp

if __name__ == "__main__":
    RelayApp.launch_instance()
