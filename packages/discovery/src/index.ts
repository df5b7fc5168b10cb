export * from './did-web.js'
export * from './did-web-cache.js'
export * from './did-web-source.js'
export * from './directory/index.js'
export * from './discovery.js'
export * from './manifest.js'
export * from './mdns.js'
export {
  type Announcement,
  announcedUrl,
  announcementRecords,
  buildAnnouncement,
  instanceName,
  MDNS_SERVICE_TYPE,
  parseTxt,
  readResponse,
} from './mdns-records.js'
export * from './mdns-roster.js'
export type { MdnsPacket, MdnsRecord, MdnsRemote, MdnsSocket, MdnsSocketOptions } from './mdns-socket.js'
export * from './source.js'
export * from './static.js'
