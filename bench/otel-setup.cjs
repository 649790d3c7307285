// The `otel` variants of the overhead benchmark: OpenTelemetry's Node SDK with its http
// instrumentation, as a team that traces with it runs it: every request a trace (the default
// sampler), exported in batches over OTLP/HTTP protobuf to the benchmark's collector (its
// POST /v1/traces, LOOPSCOPE_COLLECTOR), which stores them as it would a backend.
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');

const sdk = new NodeSDK({
  serviceName: 'bench-otel',
  traceExporter: new OTLPTraceExporter({ url: `${process.env.LOOPSCOPE_COLLECTOR}/v1/traces` }),
  instrumentations: [new HttpInstrumentation()],
  // metrics and logs: none, as the loopscope variants export none of OpenTelemetry's
  metricReaders: [],
  logRecordProcessors: [],
});
sdk.start();
// OpenTelemetry's http instrumentation patches node:http when something require()s it. The
// benchmark's servers are ES modules that import it, which without OpenTelemetry's ESM loader hook
// (import-in-the-middle) would leave them untraced (and a loopscope/register next to it, which
// does require node:http, would switch OpenTelemetry's patching on and be charged for it). The
// servers use node:http's default export, the object this require returns: patched here, they are
// traced as the hook would trace them.
require('node:http');
