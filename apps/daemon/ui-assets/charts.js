// Inline SVG charts: no library, readable without colour (labels and a text summary).

const NS = 'http://www.w3.org/2000/svg'

function s(tag, attrs = {}, text = null) {
  const el = document.createElementNS(NS, tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  if (text !== null) el.textContent = text
  return el
}

/**
 * A bar chart: `bars` are { label, value }; `title` is read by screen readers with the summary.
 * Every `labelEvery`-th label is drawn under its bar.
 */
export function barChart({ title, summary, bars, unit = '', labelEvery = 1, width = 640, height = 180 }) {
  const pad = { l: 40, r: 8, t: 10, b: 34 }
  const max = Math.max(1, ...bars.map((b) => b.value))
  const w = (width - pad.l - pad.r) / Math.max(1, bars.length)
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart', 'aria-label': `${title}. ${summary}` })
  svg.append(s('title', {}, title))
  const plotH = height - pad.t - pad.b
  // axis: 0 and max
  svg.append(s('line', { x1: pad.l, y1: pad.t + plotH, x2: width - pad.r, y2: pad.t + plotH, class: 'axis' }))
  svg.append(s('text', { x: pad.l - 4, y: pad.t + plotH, class: 'tick', 'text-anchor': 'end' }, '0'))
  svg.append(s('text', { x: pad.l - 4, y: pad.t + 10, class: 'tick', 'text-anchor': 'end' }, `${max}${unit}`))
  bars.forEach((b, i) => {
    const bh = (b.value / max) * plotH
    const x = pad.l + i * w
    const rect = s('rect', { x: x + 1, y: pad.t + plotH - bh, width: Math.max(1, w - 2), height: Math.max(0, bh), class: 'bar' })
    rect.append(s('title', {}, `${b.label}: ${b.value}${unit}`))
    svg.append(rect)
    if (i % labelEvery === 0) {
      svg.append(s('text', { x: x + w / 2, y: height - pad.b + 14, class: 'tick', 'text-anchor': 'middle' }, b.label))
    }
  })
  return svg
}
