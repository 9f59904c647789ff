/**
 * The chaincode's transactions. Every argument is one JSON string (or a plain id) validated by the
 * domain; every answer is canonical JSON. See chaincode/README.md for who may call what. Each one has
 * an entry in domain/api.ts (its argument schemas and answer type), which the metadata is built from.
 */
import { Context, Contract, Info, Transaction } from 'fabric-contract-api';
import { historyKeySchema, positionsQuerySchema, seqSchema, toInteger } from '../domain/api';
import { auditHead, auditRecordsFrom, sealAudit } from '../domain/audit';
import {
  allocateRebateFloat,
  buyBeans,
  issuanceState,
  issueBeans,
  transferBeans,
  walletBeans,
} from '../domain/beans';
import {
  closePeriod,
  confirmTransfer,
  getClearing,
  periodSchema,
  rollUpPositions,
  transferStatus,
} from '../domain/clearing';
import { getConsortium, requireReader, type Operator } from '../domain/access';
import { confirmMargin, initConsortium, payMargin, setOperatorPolicy } from '../domain/consortium';
import type { TxContext } from '../domain/context';
import { claimEnvelope, closeEnvelope, createEnvelope, getEnvelope } from '../domain/envelopes';
import { closeProposal, enact, getProposal, propose, tally, vote } from '../domain/governance';
import { Keys } from '../domain/keys';
import { paramVersions, tariffVersions } from '../domain/params';
import { getPile, listPiles, pileIdSchema, registerPile, setPileStatus } from '../domain/piles';
import { poolSummary } from '../domain/pool';
import {
  closeStaleSession,
  getSession,
  recordReading,
  revokeAuthorization,
  startSession,
  stopSession,
} from '../domain/sessions';
import { runSessionBatch } from '../domain/batch';
import { findSessions, periodPositions } from '../domain/lookups';
import {
  getStanding,
  registerStanding,
  revokeStanding,
  standingByTag,
  standingIdSchema,
} from '../domain/standing';
import {
  claimBlockRewards,
  consenters,
  GENESIS_WITNESS,
  registerConsenter,
  witnessEntries,
  witnessHead,
} from '../domain/rewards';
import { listJson } from '../domain/state';
import { idSchema, mspIdSchema, parse, parseJsonArg } from '../domain/validate';
import { getWallet, openWallet, refundWallet, topUp, walletIdSchema } from '../domain/wallets';
import { pinnedGenesis, run, toSeconds } from './fabricContext';
import { describeTransactions } from './metadata';

const json = (raw: string, what: string): unknown => parseJsonArg(raw, what);
const int = toInteger;

/** Reads are for members and auditors only. */
const reader =
  <T>(fn: (tx: TxContext) => Promise<T>) =>
  async (tx: TxContext): Promise<T> => {
    await requireReader(tx);
    return fn(tx);
  };

@Info({ title: 'EvPayContract', description: 'Unified payment network for EV charging piles' })
export class EvPayContract extends Contract {
  constructor() {
    super('evpay');
  }

  // --- consortium and governance ---
  @Transaction()
  async InitConsortium(ctx: Context, init: string): Promise<string> {
    return run(ctx, (tx) => initConsortium(tx, json(init, 'init'), pinnedGenesis()));
  }
  @Transaction()
  async PayMargin(ctx: Context): Promise<string> {
    return run(ctx, (tx) => payMargin(tx));
  }
  /** The pool's custodian confirms an operator's declared margin (argument: the operator's MSP id). */
  @Transaction()
  async ConfirmMargin(ctx: Context, mspId: string): Promise<string> {
    return run(ctx, (tx) => confirmMargin(tx, mspId));
  }
  @Transaction()
  async SetOperatorPolicy(ctx: Context, policy: string): Promise<string> {
    return run(ctx, (tx) => setOperatorPolicy(tx, json(policy, 'policy')));
  }
  @Transaction()
  async Propose(ctx: Context, proposal: string): Promise<string> {
    return run(ctx, (tx) => propose(tx, json(proposal, 'proposal')));
  }
  @Transaction()
  async Vote(ctx: Context, ballot: string): Promise<string> {
    return run(ctx, (tx) => vote(tx, json(ballot, 'vote')));
  }
  @Transaction()
  async Enact(ctx: Context, proposalId: string): Promise<string> {
    return run(ctx, (tx) => enact(tx, proposalId));
  }

  @Transaction()
  async CloseProposal(ctx: Context, proposalId: string): Promise<string> {
    return run(ctx, (tx) => closeProposal(tx, proposalId));
  }

  // --- piles, wallets, sessions ---
  @Transaction()
  async RegisterPile(ctx: Context, pile: string): Promise<string> {
    return run(ctx, (tx) => registerPile(tx, json(pile, 'pile')));
  }
  @Transaction()
  async SetPileStatus(ctx: Context, status: string): Promise<string> {
    return run(ctx, (tx) => setPileStatus(tx, json(status, 'pile status')));
  }
  @Transaction()
  async OpenWallet(ctx: Context, wallet: string): Promise<string> {
    return run(ctx, (tx) => openWallet(tx, json(wallet, 'wallet')));
  }
  @Transaction()
  async TopUp(ctx: Context, topup: string): Promise<string> {
    return run(ctx, (tx) => topUp(tx, json(topup, 'top-up')));
  }
  @Transaction()
  async RefundWallet(ctx: Context, refund: string): Promise<string> {
    return run(ctx, (tx) => refundWallet(tx, json(refund, 'refund')));
  }
  @Transaction()
  async StartSession(ctx: Context, start: string): Promise<string> {
    return run(ctx, (tx) => startSession(tx, json(start, 'start')));
  }
  @Transaction()
  async StopSession(ctx: Context, stop: string): Promise<string> {
    return run(ctx, (tx) => stopSession(tx, json(stop, 'stop')));
  }
  @Transaction()
  async RecordReading(ctx: Context, record: string): Promise<string> {
    return run(ctx, (tx) => recordReading(tx, json(record, 'record')));
  }
  @Transaction()
  async CloseStaleSession(ctx: Context, close: string): Promise<string> {
    return run(ctx, (tx) => closeStaleSession(tx, json(close, 'close')));
  }
  @Transaction()
  async RevokeAuthorization(ctx: Context, revocation: string): Promise<string> {
    return run(ctx, (tx) => revokeAuthorization(tx, json(revocation, 'revocation')));
  }
  /** Several session calls in one transaction, for a gateway under load (domain/batch.ts). */
  @Transaction()
  async SessionBatch(ctx: Context, batch: string): Promise<string> {
    return run(ctx, (tx) => runSessionBatch(tx, json(batch, 'batch')));
  }
  /** A driver's standing authorization of an RFID card, registered by the card's issuer (domain/standing.ts). */
  @Transaction()
  async RegisterStanding(ctx: Context, standing: string): Promise<string> {
    return run(ctx, (tx) => registerStanding(tx, json(standing, 'standing')));
  }
  @Transaction()
  async RevokeStanding(ctx: Context, revocation: string): Promise<string> {
    return run(ctx, (tx) => revokeStanding(tx, json(revocation, 'standing revocation')));
  }

  // --- electric beans ---
  @Transaction()
  async IssueBeans(ctx: Context, issue: string): Promise<string> {
    return run(ctx, (tx) => issueBeans(tx, json(issue, 'issue')));
  }
  @Transaction()
  async AllocateRebateFloat(ctx: Context, float: string): Promise<string> {
    return run(ctx, (tx) => allocateRebateFloat(tx, json(float, 'rebate float')));
  }
  @Transaction()
  async BuyBeans(ctx: Context, purchase: string): Promise<string> {
    return run(ctx, (tx) => buyBeans(tx, json(purchase, 'purchase')));
  }
  @Transaction()
  async TransferBeans(ctx: Context, transfer: string): Promise<string> {
    return run(ctx, (tx) => transferBeans(tx, json(transfer, 'transfer')));
  }
  @Transaction()
  async CreateEnvelope(ctx: Context, envelope: string): Promise<string> {
    return run(ctx, (tx) => createEnvelope(tx, json(envelope, 'envelope')));
  }
  @Transaction()
  async ClaimEnvelope(ctx: Context, claim: string): Promise<string> {
    return run(ctx, (tx) => claimEnvelope(tx, json(claim, 'claim')));
  }
  @Transaction()
  async CloseEnvelope(ctx: Context, envelopeId: string): Promise<string> {
    return run(ctx, (tx) => closeEnvelope(tx, envelopeId));
  }

  // --- clearing and audit ---
  /** {"period", "mspId"}: one bounded step of closing a period with many movements (README §4 Clearing). */
  @Transaction()
  async RollUpPositions(ctx: Context, rollup: string): Promise<string> {
    return run(ctx, (tx) => rollUpPositions(tx, json(rollup, 'rollup')));
  }
  @Transaction()
  async ClosePeriod(ctx: Context, period: string): Promise<string> {
    return run(ctx, (tx) => closePeriod(tx, int(period)));
  }
  @Transaction()
  async ConfirmTransfer(ctx: Context, confirmation: string): Promise<string> {
    return run(ctx, (tx) => confirmTransfer(tx, json(confirmation, 'confirmation')));
  }
  @Transaction()
  async SealAudit(ctx: Context, mspId: string): Promise<string> {
    return run(ctx, (tx) => sealAudit(tx, parse(mspIdSchema, mspId, 'mspId')));
  }

  // --- the incentive layer: consenters, block evidence, rewards, the SM3 witness ---
  @Transaction()
  async RegisterConsenter(ctx: Context, consenter: string): Promise<string> {
    return run(ctx, (tx) => registerConsenter(tx, json(consenter, 'consenter')));
  }
  /** Block evidence in the argument; each block's data in the transient map (`block-<number>`). */
  @Transaction()
  async ClaimBlockRewards(ctx: Context, claim: string): Promise<string> {
    return run(ctx, (tx) => claimBlockRewards(tx, json(claim, 'claim')));
  }
  @Transaction(false)
  async GetConsenters(ctx: Context): Promise<string> {
    return run(
      ctx,
      reader((tx) => consenters(tx)),
    );
  }
  @Transaction(false)
  async GetWitnessHead(ctx: Context): Promise<string> {
    return run(
      ctx,
      // Before the first claim: block 0 and the chain's starting value.
      reader(async (tx) => (await witnessHead(tx)) ?? { block: 0, chain: GENESIS_WITNESS, headerHash: '' }),
    );
  }
  /** Up to 500 witness entries (with each block's leader, signers and reward) from a block on. */
  @Transaction(false)
  async ListWitness(ctx: Context, fromBlock: string): Promise<string> {
    return run(
      ctx,
      reader((tx) => witnessEntries(tx, parse(seqSchema, int(fromBlock), 'fromBlock'))),
    );
  }

  // --- queries (members and auditors) ---
  @Transaction(false)
  async GetConsortium(ctx: Context): Promise<string> {
    return run(
      ctx,
      reader(async (tx) => ({
        consortium: await getConsortium(tx),
        operators: (await listJson<Operator>(tx.store, Keys.operatorsPrefix())).map((e) => e.value),
        pool: await poolSummary(tx),
      })),
    );
  }
  @Transaction(false)
  async ListParams(ctx: Context): Promise<string> {
    return run(
      ctx,
      reader((tx) => paramVersions(tx.store)),
    );
  }
  @Transaction(false)
  async ListTariffs(ctx: Context): Promise<string> {
    return run(
      ctx,
      reader((tx) => tariffVersions(tx.store)),
    );
  }
  @Transaction(false)
  async GetProposal(ctx: Context, proposalId: string): Promise<string> {
    return run(
      ctx,
      reader(async (tx) => {
        const id = parse(idSchema, proposalId, 'proposalId');
        return { proposal: await getProposal(tx, id), tally: await tally(tx, id) };
      }),
    );
  }
  @Transaction(false)
  async GetPile(ctx: Context, pileId: string): Promise<string> {
    return run(
      ctx,
      reader((tx) => getPile(tx, parse(pileIdSchema, pileId, 'pileId'))),
    );
  }
  /** {"mspId", "after"?}: an operator's piles, 500 per page; `next` is the `after` of the next page. */
  @Transaction(false)
  async ListPiles(ctx: Context, query: string): Promise<string> {
    return run(
      ctx,
      reader((tx) => listPiles(tx, json(query, 'list'))),
    );
  }
  @Transaction(false)
  async GetWallet(ctx: Context, walletId: string): Promise<string> {
    return run(
      ctx,
      reader(async (tx) => {
        const id = parse(walletIdSchema, walletId, 'walletId');
        return { wallet: await getWallet(tx, id), beans: await walletBeans(tx, id) };
      }),
    );
  }
  @Transaction(false)
  async GetSession(ctx: Context, pileId: string, sessionId: string): Promise<string> {
    return run(
      ctx,
      reader((tx) =>
        getSession(tx, parse(pileIdSchema, pileId, 'pileId'), parse(idSchema, sessionId, 'sessionId')),
      ),
    );
  }
  @Transaction(false)
  async GetStanding(ctx: Context, standingId: string): Promise<string> {
    return run(
      ctx,
      reader((tx) => getStanding(tx, parse(standingIdSchema, standingId, 'standingId'))),
    );
  }
  /** {"operator", "idTagSm3"}: what a CSMS asks when a charger presents a card. */
  @Transaction(false)
  async GetStandingByTag(ctx: Context, query: string): Promise<string> {
    return run(
      ctx,
      reader((tx) => standingByTag(tx, json(query, 'standing lookup'))),
    );
  }
  /**
   * {"by":"pile","pileId"} or {"by":"wallet","walletId"}, optional "window":{"from","to"} (unix s);
   * or {"by":"operator","mspId","period"}: the sessions settled at its piles in a clearing period.
   */
  @Transaction(false)
  async FindSessions(ctx: Context, query: string): Promise<string> {
    return run(
      ctx,
      reader((tx) => findSessions(tx, json(query, 'lookup'))),
    );
  }
  /** {"period": n, "mspId"?: ".."}: running positions of an open or closed clearing period. */
  @Transaction(false)
  async GetPositions(ctx: Context, query: string): Promise<string> {
    return run(
      ctx,
      reader(async (tx) => {
        const q = parse(positionsQuerySchema, json(query, 'positions'), 'positions');
        return periodPositions(tx, q.period, q.mspId);
      }),
    );
  }
  @Transaction(false)
  async GetIssuance(ctx: Context, mspId: string): Promise<string> {
    return run(
      ctx,
      reader((tx) => issuanceState(tx, parse(mspIdSchema, mspId, 'mspId'))),
    );
  }
  @Transaction(false)
  async GetEnvelope(ctx: Context, envelopeId: string): Promise<string> {
    return run(
      ctx,
      reader((tx) => getEnvelope(tx, parse(idSchema, envelopeId, 'envelopeId'))),
    );
  }
  @Transaction(false)
  async GetClearing(ctx: Context, period: string): Promise<string> {
    return run(
      ctx,
      reader(async (tx) => {
        const p = parse(periodSchema, int(period), 'period');
        return { result: await getClearing(tx, p), transfers: await transferStatus(tx, p) };
      }),
    );
  }
  @Transaction(false)
  async GetAuditHead(ctx: Context, mspId: string): Promise<string> {
    return run(
      ctx,
      reader((tx) => auditHead(tx, parse(mspIdSchema, mspId, 'mspId'))),
    );
  }
  /** Up to 500 sealed records of an operator from a sequence number, for offline chain verification. */
  @Transaction(false)
  async ListAuditRecords(ctx: Context, mspId: string, fromSeq: string): Promise<string> {
    return run(
      ctx,
      reader(async (tx) => {
        const msp = parse(mspIdSchema, mspId, 'mspId');
        const from = parse(seqSchema, int(fromSeq), 'fromSeq');
        return auditRecordsFrom(tx, msp, from, 500);
      }),
    );
  }
  /** Every committed version of a world-state key (needs the peer's history database). */
  @Transaction(false)
  async KeyHistory(ctx: Context, key: string): Promise<string> {
    return run(
      ctx,
      reader(async () => {
        parse(historyKeySchema, key, 'key');
        const out: Array<{ txId: string; timestamp: number; isDelete: boolean; value: unknown }> = [];
        for await (const m of ctx.stub.getHistoryForKey(key)) {
          const text = new TextDecoder().decode(m.value);
          out.push({
            txId: m.txId,
            timestamp: toSeconds(m.timestamp.seconds as number | { toNumber(): number }),
            isDelete: m.isDelete,
            value: text ? (JSON.parse(text) as unknown) : null,
          });
          if (out.length >= 1000) break;
        }
        return out;
      }),
    );
  }
}

/** GetMetadata describes each argument with the registry's schema (see metadata.ts). */
describeTransactions(EvPayContract);
