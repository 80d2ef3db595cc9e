// A real OpenID Connect provider for the single sign-on tests: the certified npm
// package oidc-provider, with a password form and a login session cookie, so that a
// second sign-in while that session lives asks for nothing.
//
// usage: node provider.mjs CONFIG.json
// CONFIG: {"port": 0, "issuer": "http://127.0.0.1:PORT", "clients": [...],
//          "users": [{"sub", "password", "name", "email", "groups"}],
//          "accessTokenTtl": 300, "cookieKeys": ["..."]}
// Listens on 127.0.0.1 only and prints "listening <port>" once it answers.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { URLSearchParams } from 'node:url';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = new Map(config.users.map((user) => [user.sub, user]));

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title>`
    + `</head><body><h1>${title}</h1>${body}</body></html>`;
}

const provider = new Provider(config.issuer, {
  clients: config.clients,
  cookies: { keys: config.cookieKeys },
  claims: {
    openid: ['sub', 'groups'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
  },
  async findAccount(_ctx, sub) {
    const user = users.get(sub);
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub, preferred_username: sub, name: user.name, email: user.email,
          groups: user.groups,
        };
      },
    };
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      // The test provider signs out at once; a hospital's provider may ask first.
      async logoutSource(ctx, form) {
        ctx.body = page('Signing out', `${form}<input type="hidden" name="logout" `
          + 'value="yes" form="op.logoutForm"><script>'
          + 'document.getElementById("op.logoutForm").submit()</script>');
      },
    },
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  // First-party clients only: no consent screen, every requested scope granted.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const existing = await ctx.oidc.provider.Grant.find(grantId);
      if (existing) return existing;
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
    await grant.save();
    return grant;
  },
  async issueRefreshToken(_ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  ttl: {
    AccessToken: config.accessTokenTtl || 300,
    IdToken: 3600,
    Session: 3600,
    Grant: 3600,
    RefreshToken: 3600,
    Interaction: 600,
    AuthorizationCode: 120,
  },
});

async function readForm(req) {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  return new URLSearchParams(raw);
}

function loginForm(uid, message) {
  const warning = message ? `<p role="alert">${escapeHtml(message)}</p>` : '';
  return page('Sign in', `${warning}<form method="post" action="/interaction/${uid}">`
    + '<label>User name <input name="login" autocomplete="username"></label> '
    + '<label>Password <input name="password" type="password" '
    + 'autocomplete="current-password"></label> '
    + '<button type="submit">Sign in</button></form>');
}

async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name !== 'login') {
    // Consent is settled by loadExistingGrant; nothing else is asked.
    await provider.interactionFinished(req, res, {}, { mergeWithLastSubmission: true });
    return;
  }
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(loginForm(uid));
    return;
  }
  const form = await readForm(req);
  const user = users.get(form.get('login') || '');
  if (!user || user.password !== form.get('password')) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(loginForm(uid, 'Wrong user name or password.'));
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: user.sub } },
    { mergeWithLastSubmission: false });
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  const match = /^\/interaction\/([^/?]+)/.exec(req.url);
  if (!match) {
    callback(req, res);
    return;
  }
  interaction(req, res, match[1]).catch((err) => {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`interaction failed: ${err.message}`);
  });
});
server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
