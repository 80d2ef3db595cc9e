"""JupyterHub configuration of Lightbox, driven by environment variables.

The demo (``lightbox demo``) sets these for its embedded identity provider and archive;
a hospital sets the same ones for its own (see README, "Point it at your hospital").

LIGHTBOX_PUBLIC_URL        where users reach the hub, e.g. https://lightbox.example.org
LIGHTBOX_HUB_IP / _PORT    the proxy's public address (default 127.0.0.1:8000)
LIGHTBOX_STATE_DIR         database, cookie secret and user homes (created if missing)
LIGHTBOX_OIDC_ISSUER       the identity provider's issuer URL (discovery is read from it)
LIGHTBOX_OIDC_CLIENT_ID    this hub's client id at the identity provider
LIGHTBOX_OIDC_CLIENT_SECRET_ENV  name of the variable holding the client secret
                           (default LIGHTBOX_OIDC_CLIENT_SECRET)
LIGHTBOX_OIDC_GROUPS_CLAIM the claim listing the user's groups (default "groups")
LIGHTBOX_OIDC_USERNAME_CLAIM  the claim naming the user (default preferred_username)
LIGHTBOX_ARCHIVES          the archives file every kernel uses (viewerlib.connect())
LIGHTBOX_PROXY_COMMAND     configurable-http-proxy executable (default: node_modules)
LIGHTBOX_TLS_CERT / _KEY   certificate and key to serve HTTPS
"""
import os
import sys
from pathlib import Path

from lightbox_hub.settings import (
    discover_identity_provider,
    prepare_workspace,
    proxy_command,
)
from lightbox_hub.roles import ADMIN_GROUP, JOB_ROLES

c = get_config()  # noqa: F821

env = os.environ
state = Path(env.get("LIGHTBOX_STATE_DIR", ".lightbox/hub")).resolve()
state.mkdir(parents=True, exist_ok=True)
public_url = env.get("LIGHTBOX_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
venv_bin = os.path.dirname(sys.executable)

# Network: the proxy listens where users come in; the hub and the proxy's API stay on
# loopback. A demo never listens on another interface.
c.JupyterHub.ip = env.get("LIGHTBOX_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(env.get("LIGHTBOX_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env.get("LIGHTBOX_HUB_INTERNAL_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = (
    f"http://127.0.0.1:{env.get('LIGHTBOX_PROXY_API_PORT', '8001')}")
c.ConfigurableHTTPProxy.command = proxy_command()
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
if env.get("LIGHTBOX_TLS_CERT"):
    c.JupyterHub.ssl_cert = env["LIGHTBOX_TLS_CERT"]
    c.JupyterHub.ssl_key = env["LIGHTBOX_TLS_KEY"]

c.JupyterHub.db_url = "sqlite:///" + str(state / "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.template_vars = {"announcement_login": "Lightbox: sign in with your "
                              "hospital account."}

# Single sign-on: OpenID Connect through oauthenticator's GenericOAuthenticator.
# oauthenticator 17 reads no discovery document itself, so the endpoints come from it.
provider = discover_identity_provider(env["LIGHTBOX_OIDC_ISSUER"])
c.JupyterHub.authenticator_class = "generic-oauth"
oidc = c.GenericOAuthenticator
oidc.client_id = env.get("LIGHTBOX_OIDC_CLIENT_ID", "lightbox")
oidc.client_secret = env.get(
    env.get("LIGHTBOX_OIDC_CLIENT_SECRET_ENV", "LIGHTBOX_OIDC_CLIENT_SECRET"), "")
oidc.oauth_callback_url = public_url + "/hub/oauth_callback"
oidc.authorize_url = provider["authorization_endpoint"]
oidc.token_url = provider["token_endpoint"]
oidc.userdata_url = provider["userinfo_endpoint"]
oidc.scope = ["openid", "profile", "email"]
oidc.username_claim = env.get("LIGHTBOX_OIDC_USERNAME_CLAIM", "preferred_username")
oidc.login_service = env.get("LIGHTBOX_LOGIN_SERVICE", "hospital sign-on")
oidc.enable_pkce = True
oidc.manage_groups = True
oidc.auth_state_groups_key = "oauth_user." + env.get("LIGHTBOX_OIDC_GROUPS_CLAIM", "groups")
oidc.allowed_groups = {role.group for role in JOB_ROLES} | {ADMIN_GROUP}
oidc.admin_groups = {ADMIN_GROUP}
if provider.get("end_session_endpoint"):
    oidc.logout_redirect_url = (provider["end_session_endpoint"]
                                + "?post_logout_redirect_uri=" + public_url + "/hub/login")
# Nothing of a session stays behind: logging out stops the user's server.
c.JupyterHub.shutdown_on_logout = True

# Per-user JupyterLab servers as local processes under the state folder. This spawner
# runs every user as the hub's own account: fine for a demo or a training room, not for
# production (use SystemdSpawner or KubeSpawner there).
c.JupyterHub.spawner_class = env.get("LIGHTBOX_SPAWNER", "simple")
c.SimpleLocalProcessSpawner.home_dir_template = str(state / "homes" / "{username}")
c.Spawner.cmd = [os.path.join(venv_bin, "jupyterhub-singleuser")]
c.Spawner.args = [
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
] + (["--allow-root"] if os.geteuid() == 0 else [])
c.Spawner.env_keep = ["PATH", "LANG", "LC_ALL", "LIGHTBOX_ARCHIVES",
                      "LIGHTBOX_EXTRA_DATA"]
c.Spawner.environment = {"PATH": venv_bin + os.pathsep + env.get("PATH", "")}
c.Spawner.default_url = "/lab"
c.Spawner.mem_limit = env.get("LIGHTBOX_MEM_LIMIT", "4G")
c.Spawner.cpu_limit = float(env.get("LIGHTBOX_CPU_LIMIT", "2"))
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.pre_spawn_hook = prepare_workspace
