import type { RouteHandler } from '../app.ts';
import { sendJson } from '../http.ts';

/** Liveness and readiness: the gateway is useful only while Temporal accepts its starts and signals. */
export const handleHealth: RouteHandler = async (_req, res, _params, ctx) => {
  try {
    await ctx.client.workflowService.describeNamespace({ namespace: ctx.client.options.namespace });
    sendJson(res, 200, { status: 'ok', temporal: 'ok', namespace: ctx.client.options.namespace });
  } catch (error) {
    sendJson(res, 503, { status: 'unavailable', temporal: (error as Error).message.split('\n')[0] });
  }
};
