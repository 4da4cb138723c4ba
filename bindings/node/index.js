'use strict';
// tokenwell: OAuth 2.0 client credentials tokens for Node services, from one Rust engine.

const { ServiceAccount } = require('./lib/service-account');
const { TokenCache } = require('./lib/token-cache');
const { TokenError, ERROR_KINDS, engineErrorKinds } = require('./lib/errors');

module.exports = { ServiceAccount, TokenCache, TokenError, ERROR_KINDS, engineErrorKinds };
