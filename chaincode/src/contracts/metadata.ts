/**
 * Gives the contract's metadata (what `org.hyperledger.fabric:GetMetadata` answers) the registry's
 * schemas (domain/api.ts). fabric-contract-api's `@Param(name, type)` can only name a primitive or a
 * `#/components/schemas` object type, and for an object type fabric-shim would JSON-parse the argument,
 * check it with its own Ajv and hand the transaction an object: a second validator with other messages,
 * and errors outside our {code, category, ...} shape. So every argument stays `type: "string"` (what it
 * is on the wire) and its schema is carried as the JSON Schema content annotations `contentMediaType`
 * and `contentSchema`, which describe what the string holds and which fabric-shim's Ajv does not
 * enforce; the chaincode's zod schemas stay the only check.
 */
import {
  argJsonSchema,
  evpayTransactions,
  type EvPayTransactionName,
  type TransactionSpec,
} from '../domain/api';

/** One parameter as fabric-contract-api records it (see its annotations/transaction.js). */
interface ParamMetadata {
  name: string;
  description?: string;
  schema: Record<string, unknown>;
}
interface TransactionMetadata {
  name: string;
  tag?: string[];
  parameters?: ParamMetadata[];
  returns?: Record<string, unknown>;
}

/** The metadata key fabric-contract-api's @Transaction writes (through reflect-metadata). */
const TRANSACTIONS_KEY = 'fabric:transactions';
const reflect = Reflect as unknown as {
  getMetadata(key: string, target: object): unknown;
  defineMetadata(key: string, value: unknown, target: object): void;
};

const MEDIA = { json: 'application/json', integer: 'application/json', text: 'text/plain' } as const;

/**
 * Rewrites the @Transaction metadata of a contract class: each parameter the registry names gets its
 * schema and a description; the answer is described as canonical JSON. Throws if a transaction and the
 * registry disagree on the parameters, so a drift fails when the chaincode loads (and in the tests).
 */
export function describeTransactions(contract: { prototype: object }): void {
  const txs = (reflect.getMetadata(TRANSACTIONS_KEY, contract.prototype) ?? []) as TransactionMetadata[];
  const registry: Record<string, TransactionSpec | undefined> = evpayTransactions;
  for (const tx of txs) {
    const spec = registry[tx.name];
    if (!spec) throw new Error(`transaction ${tx.name} is missing from the registry (domain/api.ts)`);
    const params = tx.parameters ?? [];
    const names = params.map((p) => p.name).join(',');
    if (names !== spec.args.map((a) => a.name).join(','))
      throw new Error(`transaction ${tx.name}: parameters (${names}) differ from the registry's`);
    tx.parameters = spec.args.map((a) => ({
      name: a.name,
      description: `${tx.name}.${a.name}: ${a.encoding === 'json' ? 'a JSON text' : a.encoding === 'integer' ? 'decimal digits' : 'a plain string'} checked with the schema in contentSchema (@evpay/chaincode/client evpayTransactions.${tx.name as EvPayTransactionName})`,
      schema: { type: 'string', contentMediaType: MEDIA[a.encoding], contentSchema: argJsonSchema(a) },
    }));
    tx.returns = {
      type: 'string',
      contentMediaType: 'application/json',
      description: `${spec.description} Canonical JSON: EvPayResults['${tx.name}'] in @evpay/chaincode/client.`,
    };
  }
  reflect.defineMetadata(TRANSACTIONS_KEY, txs, contract.prototype);
}
