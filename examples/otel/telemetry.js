// tokenwell's OpenTelemetry metrics and spans, printed to the console.
//
// Gets a token a few times for the client of the environment (CLIENT_ID,
// CLIENT_SECRET, TOKEN_URL, ... as `ServiceAccount.fromEnv` reads them), with
// every token request traced to the console as it ends, then prints the
// metrics once. In a service, replace the console exporters by your OTLP
// exporters (or register global providers and call `new Telemetry()`).
//
//     cd examples/otel && npm install && node telemetry.js

'use strict';

const { MeterProvider, PeriodicExportingMetricReader, ConsoleMetricExporter } = require('@opentelemetry/sdk-metrics');
const { BasicTracerProvider, SimpleSpanProcessor, ConsoleSpanExporter } = require('@opentelemetry/sdk-trace-base');
const { ServiceAccount, TokenError } = require('tokenwell');
const { Telemetry } = require('tokenwell/otel');

async function main() {
  const reader = new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter(), exportIntervalMillis: 60_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter())] });

  const telemetry = new Telemetry({ meterProvider, tracerProvider });
  const account = ServiceAccount.fromEnv({ onEvent: telemetry.onEvent });
  let status = 0;
  try {
    for (let i = 0; i < 3; i++) await account.getToken(); // one token request; the rest are cache hits
  } catch (error) {
    if (!(error instanceof TokenError)) throw error;
    console.error(`no token: ${error.message}`); // the failed request is in the metrics too
    status = 1;
  } finally {
    account.close();
  }
  await meterProvider.shutdown(); // exports the metrics (the remaining-lifetime gauge included) to the console
  telemetry.close();
  await tracerProvider.shutdown();
  return status;
}

main().then((status) => {
  process.exitCode = status;
});
