// The `fetch` option accepts the global `fetch`, undici's `fetch` (whose
// `Response` type is not the DOM one) and undici's `fetch` with a dispatcher of
// the caller's: the way to bring your own agent. Compiled by test/types.test.mjs.

import { Agent, ProxyAgent, fetch as undiciFetch } from 'undici';
import { ServiceAccount, type FetchFunction, type ServiceAccountOptions } from 'tokenwell';

const base: ServiceAccountOptions = {
  tokenUrl: 'https://auth.internal/oauth2/token',
  clientId: 'billing-worker',
  clientSecret: 'secret',
};

const withGlobal = new ServiceAccount({ ...base, fetch: globalThis.fetch });
const withUndici = new ServiceAccount({ ...base, fetch: undiciFetch });

const agent = new Agent({ connect: { ca: '-----BEGIN CERTIFICATE-----...' } });
const withAgent = new ServiceAccount({
  ...base,
  fetch: (input, init) => undiciFetch(input, { ...init, dispatcher: agent }),
});

const proxy = new ProxyAgent('http://proxy.internal:3128');
const viaProxy: FetchFunction = (input, init) => undiciFetch(input, { ...init, dispatcher: proxy });
const withProxy = new ServiceAccount({ ...base, fetch: viaProxy });

const withCa = new ServiceAccount({ ...base, caFile: '/etc/ssl/private-ca.pem' });
const caPath: string | undefined = withCa.options.caFile;

for (const account of [withGlobal, withUndici, withAgent, withProxy, withCa]) account.close();
void caPath;
