/** Result types of aggregates as PostgreSQL infers them (pg_aggregate's aggtranstype/aggfinalfn). */
import type { AggregateName } from './plan.ts';
import { isInteger, sqlType, type SqlType } from './sql-type.ts';

/** The result type, or undefined when PostgreSQL has no such aggregate for the argument type. */
export function aggregateResultType(name: AggregateName, arg: SqlType | undefined): SqlType | undefined {
  if (name === 'count') return sqlType('int8');
  if (!arg) return undefined;
  const k = arg.kind;
  switch (name) {
    case 'sum':
      if (k === 'int2' || k === 'int4') return sqlType('int8');
      if (k === 'int8' || k === 'numeric') return sqlType('numeric');
      if (k === 'float4' || k === 'float8' || k === 'interval') return sqlType(k);
      return undefined;
    case 'avg':
      if (isInteger(k) || k === 'numeric') return sqlType('numeric');
      if (k === 'float4' || k === 'float8') return sqlType('float8');
      if (k === 'interval') return sqlType('interval');
      return undefined;
    case 'min':
    case 'max':
      return k === 'other' || k === 'json' || k === 'bool'
        ? undefined
        : k === 'numeric'
          ? sqlType('numeric')
          : arg;
    case 'bool_and':
    case 'bool_or':
      return k === 'bool' ? arg : undefined;
    case 'string_agg':
      return k === 'text' ? sqlType('text') : undefined;
  }
}
