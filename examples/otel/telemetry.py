"""tokenwell's OpenTelemetry metrics and spans, printed to the console.

Gets a token a few times for the client of the environment (CLIENT_ID,
CLIENT_SECRET, TOKEN_URL, ... as ``ServiceAccount.from_env`` reads them),
with every token request traced to the console as it ends, then prints the
metrics once, as OTLP JSON. In a service, replace the console exporter and
the in-memory reader by your OTLP exporter (or set the global providers and
call ``Telemetry()`` with no arguments).

    pip install './bindings/python[otel]' opentelemetry-sdk
    python examples/otel/telemetry.py
"""

from __future__ import annotations

import sys

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from tokenwell import ServiceAccount, TokenError
from tokenwell.otel import Telemetry


def main() -> int:
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))

    telemetry = Telemetry(meter_provider, tracer_provider)
    try:
        with ServiceAccount.from_env(on_event=telemetry) as account:
            for _ in range(3):
                account.get_token()  # one token request; the other calls are cache hits
    except TokenError as error:
        print(f"no token: {error}", file=sys.stderr)  # the failed request is in the metrics too
        status = 1
    else:
        status = 0
    data = reader.get_metrics_data()  # before close(): the remaining-lifetime gauge is observed now
    if data is not None:
        print(data.to_json(indent=2))
    telemetry.close()
    meter_provider.shutdown()
    tracer_provider.shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
