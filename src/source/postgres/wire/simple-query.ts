import { TidemarkError } from '../../../errors/tidemark-error.ts';
import {
  Backend,
  PgServerErrorResponse,
  parseDataRow,
  parseErrorFields,
  parseRowDescription,
} from './backend-messages.ts';
import type { Finish, FrameHandler } from './frame-handler.ts';

export interface QueryResult {
  columns: string[];
  rows: (string | null)[][];
}

/**
 * Collects the response to one simple-protocol Query up to ReadyForQuery: the last result set's
 * columns and rows in text form, or the first ErrorResponse (as PgServerErrorResponse, which
 * the caller wraps). The connection stays usable after an error.
 */
export function simpleQueryCollector(finish: Finish<QueryResult>): FrameHandler {
  let columns: string[] = [];
  let rows: (string | null)[][] = [];
  let error: Error | null = null;
  return {
    onError: (err) => finish(err),
    onFrame(frame) {
      switch (frame.type) {
        case Backend.rowDescription:
          columns = parseRowDescription(frame.payload);
          rows = [];
          return;
        case Backend.dataRow:
          rows.push(parseDataRow(frame.payload));
          return;
        case Backend.commandComplete:
        case Backend.emptyQueryResponse:
          return;
        case Backend.errorResponse:
          error ??= new PgServerErrorResponse(parseErrorFields(frame.payload));
          return;
        case Backend.readyForQuery:
          return error ? finish(error) : finish(null, { columns, rows });
        default:
          throw new TidemarkError('SOURCE_PROTOCOL', {
            detail: `unexpected message 0x${frame.type.toString(16)} in a query response (use startReplication to stream)`,
          });
      }
    },
  };
}
