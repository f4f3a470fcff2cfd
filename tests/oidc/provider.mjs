// An OpenID Connect provider for the single sign-on tests: node's oidc-provider (OpenID
// Certified), on a free port of 127.0.0.1, with one confidential client and a sign-in form.
//
//   node provider.mjs --client-id ID --client-secret SECRET --redirect-uri URI --accounts FILE
//
// FILE holds a JSON list of accounts {sub, email, email_verified, name, password}; it is read
// at every sign-in, so a test can add people while the provider runs. Once listening, the
// provider prints one line "issuer <url>" on stdout. Sessions and grants live in memory.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { parseArgs } from "node:util";

import Provider from "oidc-provider";

const { values: args } = parseArgs({
  options: {
    "client-id": { type: "string" },
    "client-secret": { type: "string" },
    "redirect-uri": { type: "string" },
    accounts: { type: "string" },
    port: { type: "string", default: "0" },
  },
});
for (const name of ["client-id", "client-secret", "redirect-uri", "accounts"]) {
  if (!args[name]) {
    console.error(`provider.mjs: --${name} is required`);
    process.exit(2);
  }
}

function accounts() {
  return JSON.parse(readFileSync(args.accounts, "utf8"));
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function signInPage(uid, { email = "", error = "" } = {}) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test identity provider: sign in</title></head>
<body>
<h1>Test identity provider</h1>
${error ? `<p role="alert">${escape(error)}</p>` : ""}
<form method="post" action="/interaction/${escape(uid)}/login">
  <label for="email">Email</label> <input id="email" name="email" type="email" value="${escape(email)}" required>
  <label for="password">Password</label> <input id="password" name="password" type="password" required>
  <button type="submit">Sign in</button>
</form>
</body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

function send(res, status, html) {
  res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
  res.end(html);
}

const server = createServer();
server.listen(Number(args.port), "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: args["client-id"],
        client_secret: args["client-secret"],
        redirect_uris: [args["redirect-uri"]],
        response_types: ["code"],
        grant_types: ["authorization_code"],
        token_endpoint_auth_method: "client_secret_post",
      },
    ],
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
    cookies: { keys: ["tests-only-cookie-signing-key"] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    // The client is the product itself (first party): consent is implied, as a company's
    // identity provider is usually set up for its own applications.
    async loadExistingGrant(ctx) {
      const grantId =
        ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      if (!ctx.oidc.session.accountId) return undefined;
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope("openid email profile");
      await grant.save();
      return grant;
    },
    async findAccount(ctx, sub) {
      const account = accounts().find((candidate) => candidate.sub === sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            email: account.email,
            email_verified: Boolean(account.email_verified),
            name: account.name ?? account.email,
          };
        },
      };
    },
  });
  const oidc = provider.callback();

  server.on("request", async (req, res) => {
    const path = new URL(req.url, issuer).pathname;
    const match = path.match(/^\/interaction\/([^/]+)(\/login)?$/);
    if (!match) return oidc(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (details.uid !== match[1]) return send(res, 400, "<p>Unknown sign-in.</p>");
      if (req.method === "GET") return send(res, 200, signInPage(details.uid));
      if (req.method !== "POST" || !match[2]) return send(res, 405, "<p>Method not allowed.</p>");
      const form = await readForm(req);
      const email = (form.get("email") || "").trim().toLowerCase();
      const account = accounts().find(
        (candidate) => candidate.email.toLowerCase() === email && candidate.password === form.get("password"),
      );
      if (!account) {
        return send(res, 200, signInPage(details.uid, { email, error: "Wrong email or password." }));
      }
      await provider.interactionFinished(req, res, { login: { accountId: account.sub } }, {
        mergeWithLastSubmission: false,
      });
    } catch (error) {
      console.error(error);
      if (!res.headersSent) send(res, 400, `<p>${escape(error.message)}</p>`);
    }
  });
  console.log(`issuer ${issuer}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
