import { describe, expect, it } from 'vitest'
import { mdnsRouteCheck, multicastRoute } from './mdns-doctor.js'

const HEADER = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT'
const table = (...rows: string[]) => [HEADER, ...rows].join('\n')
// As the kernel prints them: addresses in host (little-endian) byte order.
const DEFAULT = 'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0'
const LAN = 'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0'
const NS_LINK = 'vpa1\t5CF2D50A\t00000000\t0001\t0\t0\t0\tFCFFFFFF\t0\t0\t0'
const MULTICAST = 'vpa1\t000000E0\t00000000\t0001\t0\t0\t0\t000000F0\t0\t0\t0'

describe('multicastRoute', () => {
  it('finds a 224.0.0.0/4 route, preferred over the default route', () => {
    expect(multicastRoute(table(NS_LINK, MULTICAST))).toEqual({ iface: 'vpa1', prefix: 4, isDefault: false })
    expect(multicastRoute(table(DEFAULT, LAN, MULTICAST.replace('vpa1', 'eth1')))).toEqual({ iface: 'eth1', prefix: 4, isDefault: false })
  })

  it('counts the default route (multicast leaves by it)', () => {
    expect(multicastRoute(table(DEFAULT, LAN))).toEqual({ iface: 'eth0', prefix: 0, isDefault: true })
  })

  it('finds none in a namespace with only its link route, or when the route is down', () => {
    expect(multicastRoute(table(NS_LINK))).toBeUndefined()
    expect(multicastRoute(table(NS_LINK, MULTICAST.replace('\t0001\t', '\t0000\t')))).toBeUndefined()
    expect(multicastRoute('')).toBeUndefined()
  })
})

describe('mdnsRouteCheck', () => {
  it('says nothing when broadcasting is off', () => {
    expect(mdnsRouteCheck(false, table(NS_LINK))).toBeUndefined()
  })

  it('warns when broadcasting without a multicast route, with the fix', () => {
    const check = mdnsRouteCheck(true, table(NS_LINK))
    expect(check).toMatchObject({ name: 'mdns multicast route', status: 'warn' })
    expect(check?.fix).toContain('ip route add 224.0.0.0/4 dev')
  })

  it('passes with a route and names it', () => {
    expect(mdnsRouteCheck(true, table(NS_LINK, MULTICAST))).toMatchObject({ status: 'pass', message: expect.stringContaining('vpa1') })
    expect(mdnsRouteCheck(true, table(DEFAULT))).toMatchObject({ status: 'pass', message: expect.stringContaining('default route') })
  })

  it('warns when the table cannot be read or the socket did not bind', () => {
    expect(mdnsRouteCheck(true, undefined, undefined, 'ENOENT')).toMatchObject({
      status: 'warn',
      message: expect.stringContaining('ENOENT'),
    })
    expect(mdnsRouteCheck(true, table(MULTICAST), { error: 'bind EADDRINUSE 0.0.0.0:5353' })).toMatchObject({
      status: 'warn',
      message: expect.stringContaining('EADDRINUSE'),
    })
  })
})
