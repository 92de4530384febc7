/**
 * Table shapes for the puller, keyed by relation id: built from pgoutput Relation messages and
 * the catalog (the catalog adds what pgoutput does not send: keys' order, enum labels, nullability).
 */
import type pg from 'pg';
import type { TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { describeTables } from './catalog.ts';
import { wrapPgError } from './pg-errors.ts';
import type { ReplicationEvent } from './pgoutput-messages.ts';

type RelationEvent = Extract<ReplicationEvent, { tag: 'relation' }>;

export class PullerSchemas {
  private readonly byOid = new Map<number, TableSchema>();

  constructor(
    private readonly client: () => Promise<pg.Client>,
    private readonly url: string,
  ) {}

  /** The schema a change of `relationId` refers to; only after its Relation message. */
  known(relationId: number): TableSchema {
    const t = this.byOid.get(relationId);
    if (!t)
      throw new TidemarkError('SOURCE_PROTOCOL', {
        detail: `change for relation ${relationId} before its Relation message`,
      });
    return t;
  }

  /** The schema for a Relation message: the cached one when it agrees, else the catalog's. */
  async onRelation(ev: RelationEvent): Promise<TableSchema> {
    const prev = this.byOid.get(ev.relationId);
    if (prev && sameShape(prev, ev)) return prev;
    const c = await this.client();
    const [fresh] = await describeTables(c, [
      { oid: ev.relationId, schema: ev.schema, name: ev.name, replident: ev.replicaIdentity },
    ]).catch((err: unknown) => {
      throw wrapPgError(err, { role: 'source', uri: this.url, action: `describing ${ev.schema}.${ev.name}` });
    });
    if (!fresh || !sameShape(fresh, ev)) {
      throw new TidemarkError('SOURCE_SCHEMA_CHANGED', {
        detail: `${ev.schema}.${ev.name} changed again before its earlier change was replicated`,
      });
    }
    this.byOid.set(ev.relationId, fresh);
    return fresh;
  }
}

function sameShape(t: TableSchema, ev: RelationEvent): boolean {
  return (
    t.schema === ev.schema &&
    t.name === ev.name &&
    t.columns.length === ev.columns.length &&
    t.columns.every(
      (c, i) =>
        c.name === ev.columns[i]!.name &&
        c.typeOid === ev.columns[i]!.typeOid &&
        c.typeMod === ev.columns[i]!.typeMod,
    )
  );
}
