/**
 * Whether output may carry colour codes: `FORCE_COLOR` (other than 0/false) says yes, `NO_COLOR`
 * (any non-empty value) says no, otherwise only when stdout is a terminal that has colours.
 * The CLI reads these two variables here because they are terminal conventions, not spl settings.
 */
export function colourWanted(env: NodeJS.ProcessEnv = process.env, stdout: NodeJS.WriteStream = process.stdout): boolean {
  const force = env['FORCE_COLOR']
  if (force !== undefined && force !== '' && force !== '0' && force !== 'false') return true
  if (force === '0' || force === 'false') return false
  if (env['NO_COLOR']) return false
  return Boolean(stdout.isTTY) && (stdout.getColorDepth?.() ?? 1) > 1
}
