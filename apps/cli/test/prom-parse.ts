import { createRequire } from 'node:module'

/**
 * Prometheus text exposition format (0.0.4) for the observability tests.
 *
 * Two parsers on purpose: `parse-prometheus-text-format` (a published parser, used to prove the
 * text parses and to read counters and gauges) and a strict one written here, because the
 * published parser merges every series of a histogram into one and drops their labels, `_sum`
 * and `_count` (so per-pair latency histograms cannot be read with it).
 */

/** One family as `parse-prometheus-text-format` returns it. */
export interface LibFamily {
  name: string
  help: string
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'
  metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string> }[]
}

const require = createRequire(import.meta.url)
/** The published parser (it has no type declarations; its result shape is `LibFamily[]`). */
export const parseWithLibrary = require('parse-prometheus-text-format') as (text: string) => LibFamily[]

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface Family {
  name: string
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'
  help: string
  samples: Sample[]
}

export interface HistogramSeries {
  /** The series labels without `le`. */
  labels: Record<string, string>
  /** Cumulative bucket counts by upper bound, ascending (the last is +Inf). */
  buckets: { le: number; count: number }[]
  sum: number
  count: number
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

function parseValue(raw: string, where: string): number {
  if (raw === '+Inf' || raw === 'Inf') return Number.POSITIVE_INFINITY
  if (raw === '-Inf') return Number.NEGATIVE_INFINITY
  if (raw === 'NaN') return Number.NaN
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) throw new Error(`${where}: '${raw}' is not a number`)
  return Number(raw)
}

function parseLabels(text: string, where: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {}
  let s = text.slice(1) // after '{'
  for (;;) {
    s = s.trimStart()
    if (s.startsWith('}')) return { labels, rest: s.slice(1) }
    const m = LABEL_NAME_RE.exec(s)
    if (!m) throw new Error(`${where}: bad label name at '${s.slice(0, 20)}'`)
    const name = m[0]
    s = s.slice(name.length).trimStart()
    if (!s.startsWith('="')) throw new Error(`${where}: label ${name} has no ="value"`)
    s = s.slice(2)
    let value = ''
    for (;;) {
      const ch = s[0]
      if (ch === undefined) throw new Error(`${where}: unterminated value of label ${name}`)
      if (ch === '"') {
        s = s.slice(1)
        break
      }
      if (ch === '\\') {
        const next = s[1]
        if (next === 'n') value += '\n'
        else if (next === '\\' || next === '"') value += next
        else throw new Error(`${where}: bad escape \\${next ?? ''} in label ${name}`)
        s = s.slice(2)
        continue
      }
      if (ch === '\n') throw new Error(`${where}: newline in label ${name}`)
      value += ch
      s = s.slice(1)
    }
    if (name in labels) throw new Error(`${where}: label ${name} twice`)
    labels[name] = value
    s = s.trimStart()
    if (s.startsWith(',')) s = s.slice(1)
    else if (!s.startsWith('}')) throw new Error(`${where}: expected , or } after label ${name}`)
  }
}

const seriesKey = (name: string, labels: Record<string, string>) =>
  `${name}{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',')}}`

/**
 * Parses the text format strictly: every line must be a comment, HELP, TYPE or a well-formed
 * sample; a sample must belong to a family declared before it (or is untyped); a series may not
 * appear twice; histograms must be complete and consistent (cumulative buckets ending in +Inf
 * equal to `_count`, a `_sum`). Throws with the line number otherwise.
 */
export function parsePrometheus(text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  const seen = new Set<string>()
  const lines = text.split('\n')
  const familyOf = (sampleName: string): Family | undefined => {
    const direct = families.get(sampleName)
    if (direct && direct.type !== 'histogram' && direct.type !== 'summary') return direct
    for (const suffix of ['_bucket', '_sum', '_count']) {
      if (!sampleName.endsWith(suffix)) continue
      const f = families.get(sampleName.slice(0, -suffix.length))
      if (f && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket'))) return f
    }
    return direct && direct.type === 'summary' ? direct : undefined
  }
  lines.forEach((line, i) => {
    const where = `line ${i + 1}`
    if (line.trim() === '') return
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(line)
      if (!m) return // a plain comment
      const [, kind, name, rest = ''] = m
      if (!NAME_RE.test(name!) || NAME_RE.exec(name!)![0] !== name) throw new Error(`${where}: bad metric name ${name}`)
      let f = families.get(name!)
      if (kind === 'TYPE') {
        if (!TYPES.has(rest.trim())) throw new Error(`${where}: unknown type '${rest}'`)
        if (f && f.samples.length > 0) throw new Error(`${where}: TYPE of ${name} after its samples`)
        if (f?.type !== undefined && f.type !== 'untyped') throw new Error(`${where}: TYPE of ${name} twice`)
        if (!f) families.set(name!, (f = { name: name!, type: rest.trim() as Family['type'], help: '', samples: [] }))
        else f.type = rest.trim() as Family['type']
      } else {
        if (!f) families.set(name!, (f = { name: name!, type: 'untyped', help: '', samples: [] }))
        f.help = rest
      }
      return
    }
    const nm = NAME_RE.exec(line)
    if (!nm) throw new Error(`${where}: not a sample line: ${line.slice(0, 60)}`)
    const name = nm[0]
    let rest = line.slice(name.length)
    let labels: Record<string, string> = {}
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, where))
    const parts = rest.trim().split(/\s+/)
    if (parts.length < 1 || parts.length > 2 || parts[0] === '') throw new Error(`${where}: expected a value (and a timestamp)`)
    const value = parseValue(parts[0]!, where)
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`${where}: bad timestamp ${parts[1]}`)
    const key = seriesKey(name, labels)
    if (seen.has(key)) throw new Error(`${where}: series ${key} appears twice`)
    seen.add(key)
    let f = familyOf(name)
    if (!f) families.set(name, (f = { name, type: 'untyped', help: '', samples: [] }))
    f.samples.push({ name, labels, value })
  })
  for (const f of families.values()) if (f.type === 'histogram') histogramSeries(f)
  return families
}

/** The series of a histogram family, checked for consistency. */
export function histogramSeries(f: Family): HistogramSeries[] {
  if (f.type !== 'histogram') throw new Error(`${f.name} is a ${f.type}, not a histogram`)
  const byKey = new Map<string, HistogramSeries>()
  const get = (labels: Record<string, string>) => {
    const key = seriesKey('', labels)
    let s = byKey.get(key)
    if (!s) byKey.set(key, (s = { labels, buckets: [], sum: Number.NaN, count: Number.NaN }))
    return s
  }
  for (const sample of f.samples) {
    if (sample.name === `${f.name}_bucket`) {
      const { le, ...labels } = sample.labels
      if (le === undefined) throw new Error(`${f.name}_bucket without le`)
      get(labels).buckets.push({ le: parseValue(le, `${f.name} le`), count: sample.value })
    } else if (sample.name === `${f.name}_sum`) get(sample.labels).sum = sample.value
    else if (sample.name === `${f.name}_count`) get(sample.labels).count = sample.value
    else throw new Error(`${sample.name} does not belong to histogram ${f.name}`)
  }
  for (const s of byKey.values()) {
    const where = `${f.name}${seriesKey('', s.labels)}`
    s.buckets.sort((a, b) => a.le - b.le)
    const last = s.buckets[s.buckets.length - 1]
    if (!last || last.le !== Number.POSITIVE_INFINITY) throw new Error(`${where}: no +Inf bucket`)
    for (let i = 1; i < s.buckets.length; i++)
      if (s.buckets[i]!.count < s.buckets[i - 1]!.count) throw new Error(`${where}: buckets are not cumulative`)
    if (Number.isNaN(s.count) || Number.isNaN(s.sum)) throw new Error(`${where}: _sum or _count missing`)
    if (last.count !== s.count) throw new Error(`${where}: +Inf bucket ${last.count} ≠ _count ${s.count}`)
  }
  return [...byKey.values()]
}

/** The value of the one sample of `name` whose labels include `labels` (undefined when none). */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string>): number | undefined {
  const f = families.get(name)
  if (!f) return undefined
  const hits = f.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  if (hits.length > 1) throw new Error(`${name}${JSON.stringify(labels)} matches ${hits.length} series`)
  return hits[0]?.value
}
