import type { Candidate, EnvelopeChecker, KnownId } from '@spl/records'
import { type ClassifiedPage, claimedId, classifyPage } from './page.js'

export type { ClassifiedPage } from './page.js'

/** What the ingest checks of records from outside need: the checker, the ids held, the namespace gate. */
export interface IncomingChecks {
  checker: EnvelopeChecker
  known(ids: readonly string[]): Promise<Map<string, KnownId>>
  namespaces: { namespaceGate(record: Candidate['record']): string | null }
}

/**
 * Every check of SPEC 2.4 that runs before the store's plan, for records that came from outside
 * (a peer's page, a relay's deposit, an import): schema, thread (when `expectedThread` is set),
 * hash, actor, signature, namespace; records held already are counted as duplicates. The plan
 * (CLOCK_CONFLICT, stub replacement) runs when the accepted ones are stored.
 */
export async function checkIncoming(
  parts: IncomingChecks,
  records: readonly unknown[],
  expectedThread: string | null,
): Promise<ClassifiedPage & { received: number }> {
  const ids = records.map(claimedId).filter((id): id is string => id !== null)
  const [checked, known] = await Promise.all([parts.checker.checkMany(records, expectedThread), parts.known(ids)])
  return { ...classifyPage(checked, known, (r) => parts.namespaces.namespaceGate(r)), received: checked.length }
}
