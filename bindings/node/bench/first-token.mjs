// The first token of a fresh process, against a bare fetch of the same token
// endpoint (bench.mjs runs it in child processes): argv[2] is `fetch` or
// `tokenwell` (the backend comes from TOKENWELL_BACKEND), argv[3] the token URL.
// Timed from before the import of tokenwell (engine load included) to the token in hand.
const [, , what, tokenUrl] = process.argv;
const t0 = process.hrtime.bigint();
let token;
if (what === 'fetch') {
  const response = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${btoa('bench:bench-secret')}` },
    body: 'grant_type=client_credentials',
  });
  token = (await response.json()).access_token;
} else {
  const { ServiceAccount, engineBackend } = await import('../index.js');
  const account = new ServiceAccount({ tokenUrl, clientId: 'bench', clientSecret: 'bench-secret', backgroundRefresh: false });
  token = await account.getToken();
  account.close();
  if (engineBackend() !== process.env.TOKENWELL_BACKEND) throw new Error(`ran ${engineBackend()}`);
}
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
if (typeof token !== 'string') throw new Error('no token');
process.stdout.write(JSON.stringify({ ms }));
