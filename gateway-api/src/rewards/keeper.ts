/**
 * The reward keeper, one in each operator's gateway (on by default): it follows the committed blocks
 * from the witness head on (the head on chain is its checkpoint, so a restart or another keeper's claims
 * lose nothing) and claims them with their evidence (ClaimBlockRewards). Blocks with no business
 * transaction (the keepers' own claims, configuration) wait until a business block follows, so an idle
 * network stays idle instead of claiming its claims forever.
 *
 * STAGGER RULE: a claim starts at the block after the witness head, the same block for every keeper, so
 * the keeper of the operator at index (that block mod operators) in name order claims a ready queue at
 * once; every other keeper waits `staggerMs` per place behind it and reads the head again: if it moved,
 * the next claim has its own designated keeper and the rule starts over; if not, the designated keeper
 * looks stopped and this one claims. So one keeper normally claims each batch (under load, when claims
 * take seconds, designating by the queue's last block let several keepers claim the same blocks and all
 * but one be refused: 900 refused claims in a one-minute benchmark), and a stopped keeper delays rewards
 * by seconds.
 */
import {
  MAX_CLAIM_BLOCKS,
  blockDataKey,
  isRewardOverhead,
  readBlockData,
  type WitnessHead,
} from '@evpay/chaincode/client';
import type { Logger } from 'pino';
import { ChaincodeRejection, TransactionInvalidated } from '../fabric/errors';
import { answerOf, query, type OrgLedger } from '../fabric/orgLedger';
import { evidenceOf, type EvidenceWithData } from './evidence';

export interface KeeperOptions {
  staggerMs: number;
}

export interface KeeperStats {
  claims: number;
  blocksWitnessed: number;
  rewardedFen: number;
  lastError?: string;
}

export class RewardKeeper {
  private stopped = false;
  /** Blocks read and not yet witnessed, each marked whether it holds a business transaction. */
  private readonly pending: Array<EvidenceWithData & { business: boolean }> = [];
  private close: (() => void) | undefined;
  private claiming: Promise<void> | undefined;
  /** This operator's place among the operators in English-name order, and how many there are. */
  private place = { index: 0, operators: 1 };
  readonly stats: KeeperStats = { claims: 0, blocksWitnessed: 0, rewardedFen: 0 };

  constructor(
    private readonly ledger: OrgLedger,
    private readonly logger: Logger,
    private readonly opts: KeeperOptions,
  ) {}

  /** The witness head (block 0 before the first claim). */
  private async head(): Promise<WitnessHead> {
    return query<WitnessHead>(this.ledger, 'GetWitnessHead');
  }

  /** Runs until stop(); every failure is logged and followed by a fresh start from the head. */
  async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.follow();
      } catch (e) {
        this.stats.lastError = (e as Error).message;
        if (!this.stopped) this.logger.warn({ err: e }, 'reward keeper: restarting from the witness head');
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, 2_000));
    }
  }

  stop(): void {
    this.stopped = true;
    this.close?.();
  }

  private async follow(): Promise<void> {
    this.pending.length = 0;
    const view = await query<{ operators: Array<{ mspId: string; name: string }> }>(
      this.ledger,
      'GetConsortium',
    );
    const names = view.operators.map((o) => o.name).sort();
    const mine = view.operators.find((o) => o.mspId === this.ledger.mspId);
    this.place = { index: mine ? names.indexOf(mine.name) : 0, operators: Math.max(1, names.length) };
    const head = await this.head();
    const start = BigInt(head.block + 1);
    const blocks = await this.ledger.blocks(start);
    this.close = () => blocks.close();
    this.logger.info({ fromBlock: String(start) }, 'reward keeper following blocks');
    // The reader only queues; the claimer runs beside it, so blocks keep arriving while a claim waits for
    // its commit and the next claim covers all of them (up to MAX_CLAIM_BLOCKS) instead of one.
    let failure: unknown;
    for await (const block of blocks) {
      if (this.stopped || failure !== undefined) break;
      const ev = evidenceOf(block);
      this.pending.push({
        ...ev,
        business: readBlockData(ev.data, isRewardOverhead).businessTransactions > 0,
      });
      if (this.claiming === undefined && (this.ready || this.pending.length >= MAX_CLAIM_BLOCKS))
        this.claiming = this.claimPending()
          .catch((e: unknown) => {
            failure = e;
            blocks.close();
          })
          .finally(() => (this.claiming = undefined));
    }
    await this.claiming;
    if (failure !== undefined) throw failure;
  }

  /** Drops the queued blocks at or below `block` (witnessed by someone, as a fresh endorser reported). */
  private trimTo(block: number): void {
    while (this.pending.length > 0 && (this.pending[0] as EvidenceWithData).evidence.number <= block)
      this.pending.shift();
  }

  /** Whether a queued block holds a business transaction (then the queue is worth a claim). */
  private get ready(): boolean {
    return this.pending.some((b) => b.business);
  }

  private async claimPending(): Promise<void> {
    const { index, operators } = this.place;
    const { staggerMs } = this.opts;
    let waitedFor: number | undefined;
    while (this.pending.length > 0 && (this.ready || this.pending.length >= MAX_CLAIM_BLOCKS)) {
      // STAGGER RULE
      const first = (this.pending[0] as EvidenceWithData).evidence.number;
      const place = (index - (first % operators) + operators) % operators;
      if (place > 0 && waitedFor !== first) {
        await new Promise((r) => setTimeout(r, place * staggerMs));
        this.trimTo((await this.head()).block);
        waitedFor = first;
        continue;
      }
      const batch = this.pending.slice(0, MAX_CLAIM_BLOCKS);
      const transient = Object.fromEntries(batch.map((b) => [blockDataKey(b.evidence.number), b.data]));
      try {
        const c = await this.ledger.submit(
          'client',
          'ClaimBlockRewards',
          [JSON.stringify({ blocks: batch.map((b) => b.evidence) })],
          {},
          transient,
        );
        const r = answerOf<{
          witnessed: number;
          rewardedFen: number;
        }>(c.result);
        this.stats.claims++;
        this.stats.blocksWitnessed += r.witnessed;
        this.stats.rewardedFen += r.rewardedFen;
        this.logger.info(
          {
            from: batch[0]?.evidence.number,
            to: batch[batch.length - 1]?.evidence.number,
            rewardedFen: r.rewardedFen,
            txId: c.txId,
          },
          'blocks witnessed and rewarded',
        );
        // What arrived meanwhile waits for its own business block, like the rest.
        this.trimTo(batch[batch.length - 1]?.evidence.number ?? 0);
      } catch (e) {
        // Another keeper was first. The refusal names the head the endorsers saw, which may be ahead of
        // our own peer: continue after it rather than after what our peer says (a lagging peer would
        // make us claim the same block again and again).
        const err = e instanceof ChaincodeRejection ? e.error : undefined;
        if (err?.code === 'BLOCK_ALREADY_WITNESSED' && typeof err.details?.head === 'number') {
          this.trimTo(err.details.head);
          continue;
        }
        if (e instanceof TransactionInvalidated) {
          this.trimTo((await this.head()).block);
          continue;
        }
        throw e; // BLOCK_OUT_OF_ORDER and the rest: start again from the head
      }
    }
  }
}
