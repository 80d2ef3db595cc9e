"""JupyterHub configuration of Lightbox.

Lightbox's own settings are traits of ``c.LightboxHub`` (``lightbox_hub.config``); each
one's help names the environment variable that fills its default, so the demo and a
hospital configure the hub the same way (README, "Point it at your hospital"). A file
named by LIGHTBOX_HUB_CONFIG is loaded first and may set any ``c.<Class>.<trait>``.

Environment read here directly:
LIGHTBOX_HUB_IP / _PORT          the proxy's public address (default 127.0.0.1:8000)
LIGHTBOX_HUB_INTERNAL_PORT       the hub's own port on 127.0.0.1 (default 8081)
LIGHTBOX_PROXY_API_PORT          the proxy's API port on 127.0.0.1 (default 8001)
LIGHTBOX_PROXY_COMMAND           configurable-http-proxy executable (default: node_modules)
LIGHTBOX_TLS_CERT / _KEY         certificate and key: the proxy then serves HTTPS
LIGHTBOX_SPAWNER                 spawner class (default: lightbox_hub.spawner's local
                                 one, refused on a network address unless
                                 LIGHTBOX_ALLOW_UNISOLATED_SPAWNER is set)
LIGHTBOX_MEM_LIMIT / _CPU_LIMIT  per-process limits of user servers (default 4G / 2)
LIGHTBOX_OPERATOR_TOKEN          if set, API token of an operations service
JUPYTERHUB_CRYPT_KEY             key for the encrypted auth state; made once into the
                                 state folder when unset
"""
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlencode

from lightbox_hub.auth import (
    LightboxOIDCAuthenticator,
    ldap_authenticator_class,
    make_refresh_hook,
    record_sign_in,
    stamp_expiry,
)
from lightbox_hub.config import LightboxHub
from lightbox_hub.handlers import extra_handlers
from lightbox_hub.logs import scrub_query_strings, scrubbed_log_request
from lightbox_hub.services import LightboxServices
from lightbox_hub.settings import discover_identity_provider, proxy_command
from lightbox_hub.spawner import check_spawner_isolation, make_hooks

c = get_config()  # noqa: F821
env = os.environ
if env.get("LIGHTBOX_HUB_CONFIG"):
    load_subconfig(env["LIGHTBOX_HUB_CONFIG"])  # noqa: F821

lightbox = LightboxHub(config=c)
state = Path(lightbox.state_dir)
state.mkdir(parents=True, exist_ok=True)
services = LightboxServices(lightbox)
public_url = lightbox.public_url
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
# Users reach the hub over TLS: here (the proxy) or at a front end (an ingress).
tls_on = bool(env.get("LIGHTBOX_TLS_CERT")) or public_url.startswith("https://")

# Per-user JupyterLab servers: a site file's spawner_class wins, then
# LIGHTBOX_SPAWNER, then the local one. The local one runs every user as the hub's
# own account, so it may not face a network unless the administrator says so.
if "spawner_class" not in c.JupyterHub:
    c.JupyterHub.spawner_class = env.get("LIGHTBOX_SPAWNER",
                                         "lightbox_hub.spawner.LightboxLocalSpawner")
check_spawner_isolation(c.JupyterHub.spawner_class, c.JupyterHub.ip,
                        lightbox.allow_unisolated_spawner)

c.JupyterHub.db_url = "sqlite:///" + str(state / "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.template_vars = {"announcement_login": "Lightbox: sign in with your "
                              "hospital account."}

# Auth state (the user's tokens) is encrypted in the hub database.
if not env.get("JUPYTERHUB_CRYPT_KEY"):
    key_file = state / "jupyterhub_crypt_key"
    if not key_file.exists():
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_hex(32))
    env["JUPYTERHUB_CRYPT_KEY"] = key_file.read_text().strip()

# Sign-on. Groups from the provider become JupyterHub groups; the job role follows.
if lightbox.authenticator == "ldap":
    # The user's LDAP groups (memberOf or a group search) are mapped by name, as the
    # OpenID Connect groups claim is; the site file sets the server and the search.
    c.JupyterHub.authenticator_class = ldap_authenticator_class()
    auth = c.LightboxLDAPAuthenticator
    auth.manage_groups = True
    auth.allowed_group_names = set(lightbox.allowed_groups)
    auth.admin_group_name = lightbox.admin_group
else:
    # oauthenticator 17 reads no discovery document itself: the endpoints come from it.
    provider = discover_identity_provider(lightbox.oidc_issuer)
    c.JupyterHub.authenticator_class = LightboxOIDCAuthenticator
    auth = c.LightboxOIDCAuthenticator
    auth.client_id = lightbox.oidc_client_id
    auth.client_secret = lightbox.client_secret()
    auth.oauth_callback_url = public_url + "/hub/oauth_callback"
    auth.authorize_url = provider["authorization_endpoint"]
    auth.token_url = provider["token_endpoint"]
    auth.userdata_url = provider["userinfo_endpoint"]
    auth.scope = list(lightbox.oidc_scopes)
    auth.username_claim = lightbox.username_claim
    auth.login_service = env.get("LIGHTBOX_LOGIN_SERVICE", "hospital sign-on")
    auth.enable_pkce = True
    # RFC 6749 2.3.1: every provider must take the client secret as HTTP Basic, the
    # default of OpenID Connect Discovery; some take it in the body only for the
    # code exchange and refuse it there when the hub renews a token.
    auth.basic_auth = "client_secret_basic" in provider.get(
        "token_endpoint_auth_methods_supported", ["client_secret_basic"])
    auth.manage_groups = True
    auth.auth_state_groups_key = "oauth_user." + lightbox.groups_claim
    auth.allowed_groups = set(lightbox.allowed_groups)
    auth.admin_groups = {lightbox.admin_group}
    auth.modify_auth_state_hook = stamp_expiry
    auth.refresh_user_hook = make_refresh_hook(lightbox.access_token_refresh_margin_s)
    if provider.get("end_session_endpoint"):
        auth.logout_redirect_url = provider["end_session_endpoint"] + "?" + urlencode({
            "client_id": lightbox.oidc_client_id,
            "post_logout_redirect_uri": public_url + "/hub/login"})
auth.enable_auth_state = True
auth.refresh_pre_spawn = True
auth.auth_refresh_age = 300
auth.post_auth_hook = record_sign_in
# Nothing of a session stays behind: logging out stops the user's server.
c.JupyterHub.shutdown_on_logout = True

# Security headers. Image data reaches the browser over the kernel websocket and in
# notebook files; no response of the hub or the user's server may be cached.
frame_ancestors = " ".join(lightbox.frame_ancestors)
hub_csp = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
           "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src "
           f"'none'; base-uri 'self'; frame-ancestors {frame_ancestors}")
common_headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                  "X-Content-Type-Options": "nosniff"}
if tls_on:
    # RFC 6797: browsers then refuse plain HTTP to this host for a year.
    common_headers["Strict-Transport-Security"] = "max-age=31536000"
c.JupyterHub.tornado_settings = {
    "headers": {"Content-Security-Policy": hub_csp, **common_headers},
    "log_function": scrubbed_log_request,
    "lightbox": services,
}
c.JupyterHub.extra_handlers = extra_handlers()
# Refused requests are logged as warnings with their URL: no query string there either.
scrub_query_strings("tornado.general", "tornado.application", "tornado.access",
                    "JupyterHub")

singleuser_config = state / "singleuser-config"
singleuser_config.mkdir(exist_ok=True)
# The users' servers: everything from their own origin. JupyterLab needs inline and
# eval'd script, and anywidget imports each widget's code from a blob: URL; images
# and thumbnails come as data: and blob: URLs; the kernels' websockets are named
# explicitly, since older browsers do not count ws: as 'self'.
public_origin = public_url.split("://", 1)[1].split("/", 1)[0]
websocket_origin = ("wss://" if public_url.startswith("https://") else "ws://") + (
    public_origin)
server_csp = ("default-src 'self'; "
              "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; "
              "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
              "font-src 'self' data:; worker-src 'self' blob:; "
              f"connect-src 'self' {websocket_origin}; object-src 'none'; "
              f"base-uri 'self'; frame-ancestors {frame_ancestors}")
(singleuser_config / "jupyter_server_config.json").write_text(__import__("json").dumps({
    "ServerApp": {"tornado_settings": {"headers": {
        "Content-Security-Policy": server_csp, **common_headers}}},
}))

# Per-user JupyterLab servers as local processes under the state folder, with their
# memory and CPU limits in force. This spawner runs every user as the hub's own
# account: fine for a demo or a training room; production swaps it (LIGHTBOX_SPAWNER
# or the site file) for SystemdSpawner or KubeSpawner, keeping the hooks below.
c.SimpleLocalProcessSpawner.home_dir_template = str(state / "homes" / "{username}")
c.Spawner.cmd = [os.path.join(venv_bin, "jupyterhub-singleuser")]
c.Spawner.args = [
    # No shell for users: with this spawner it would run as the hub's own account.
    "--ServerApp.terminals_enabled=False",
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
] + (["--allow-root"] if os.geteuid() == 0 else [])
c.Spawner.env_keep = ["PATH", "LANG", "LC_ALL", "LIGHTBOX_EXTRA_DATA"]
c.Spawner.environment = {"PATH": venv_bin + os.pathsep + env.get("PATH", ""),
                         "JUPYTER_CONFIG_PATH": str(singleuser_config)}
c.Spawner.default_url = "/lab"
c.Spawner.mem_limit = env.get("LIGHTBOX_MEM_LIMIT", "4G")
c.Spawner.cpu_limit = float(env.get("LIGHTBOX_CPU_LIMIT", "2"))
# Time for the server to shut its kernels down cleanly (they purge and report).
c.LocalProcessSpawner.term_timeout = 9
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.pre_spawn_hook, c.Spawner.post_stop_hook = make_hooks(lightbox,
                                                                 services.audit)

# Services: the idle culler, and optionally an operations client with an API token.
c.JupyterHub.services = [{
    "name": "idle-culler",
    "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                f"--timeout={lightbox.idle_timeout_s}",
                f"--cull-every={lightbox.cull_every_s}"],
}]
c.JupyterHub.load_roles = [{
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}]
if env.get("LIGHTBOX_OPERATOR_TOKEN"):
    c.JupyterHub.services.append({"name": "lightbox-operator",
                                  "api_token": env["LIGHTBOX_OPERATOR_TOKEN"]})
    c.JupyterHub.load_roles.append({
        "name": "lightbox-operator",
        "scopes": ["admin:users", "servers", "read:users", "admin:server_state",
                   "access:servers"],
        "services": ["lightbox-operator"],
    })

# The presenter relay of the lunch-and-learn lessons, on its own loopback port.
from lightbox_extensions.presenter import configure_hub  # noqa: E402

from lightbox_hub.embedded.ports import free_port  # noqa: E402

configure_hub(c, port=int(env.get("LIGHTBOX_PRESENTER_PORT") or free_port()))
