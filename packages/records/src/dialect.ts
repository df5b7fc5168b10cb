import {
  ColumnDefinitionNode,
  DataTypeNode,
  type Kysely,
  type KyselyPlugin,
  OperationNodeTransformer,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  PostgresAdapter,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
} from 'kysely'

/** The SQL dialects the packages' tables and queries are written for. */
export type Dialect = 'sqlite' | 'postgres'

/**
 * Which dialect `db` speaks, from kysely's adapter (the one thing every Kysely carries): a
 * package that must write dialect-specific SQL asks this instead of being told.
 */
export function dialectOf(db: Pick<Kysely<unknown>, 'getExecutor'>): Dialect {
  const adapter = db.getExecutor().adapter
  return adapter instanceof PostgresAdapter || adapter.constructor.name === 'PostgresAdapter' ? 'postgres' : 'sqlite'
}

/** Whether `db` is PostgreSQL. */
export function isPostgres(db: Pick<Kysely<unknown>, 'getExecutor'>): boolean {
  return dialectOf(db) === 'postgres'
}

/**
 * Rewrites the packages' schema statements (written once, in SQLite's terms) for PostgreSQL:
 * `integer` becomes `bigint` (times in ms, id keys of 52 bits and sequences exceed 32 bits;
 * SQLite's integer is 64-bit already) and an `integer primary key autoincrement` becomes a
 * `bigserial` primary key. Queries are left alone.
 */
class PostgresSchemaTransformer extends OperationNodeTransformer {
  protected override transformColumnDefinition(node: ColumnDefinitionNode): ColumnDefinitionNode {
    const out = super.transformColumnDefinition(node)
    if (out.autoIncrement && DataTypeNode.is(out.dataType)) {
      return { ...ColumnDefinitionNode.cloneWith(out, { autoIncrement: false }), dataType: DataTypeNode.create('bigserial') }
    }
    return out
  }

  protected override transformDataType(node: DataTypeNode): DataTypeNode {
    return node.dataType === 'integer' ? DataTypeNode.create('bigint') : node
  }
}

/** The kysely plugin an application adds to a PostgreSQL Kysely before handing it to the packages. */
export class PostgresSchemaPlugin implements KyselyPlugin {
  readonly #transformer = new PostgresSchemaTransformer()

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    const kind = args.node.kind
    return kind === 'CreateTableNode' || kind === 'AlterTableNode' ? this.#transformer.transformNode(args.node) : args.node
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result
  }
}
