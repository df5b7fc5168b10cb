#!/usr/bin/env node
// The `spl` binary. It starts fast because it loads only the module of the command being run:
// the table below names each command's paths and how to import its class, and `run` imports the
// classes whose first word matches the command line (all of them for help, completion or an
// unknown word, so that clipanion can list and suggest). The build bundles this file with
// esbuild into dist/bin.js plus one chunk per command module (apps/cli/build.mjs).
//
// To add a command: one line in COMMANDS with its paths ('a b' for `spl a b`; several paths
// separated by '|') and its loader, e.g.
//
//   ['relay status', async () => (await import('./commands/relay.js')).RelayStatusCommand],
//
// The paths must equal the class's `static paths` (checked each time the class loads: a
// mismatch fails loudly instead of hiding the command).
import type { CommandClass } from 'clipanion'
import { runCli } from './run.js'

type Load = () => Promise<CommandClass>

const COMMANDS: ReadonlyArray<readonly [paths: string, load: Load]> = [
  ['init', async () => (await import('./commands/init.js')).InitCommand],
  ['serve', async () => (await import('./commands/serve.js')).ServeCommand],
  ['version|--version|-v', async () => (await import('./commands/version.js')).VersionCommand],
  ['completion', async () => (await import('./commands/completion.js')).CompletionCommand],
  ['__complete', async () => (await import('./commands/completion.js')).CompleteCommand],
  ['intend', async () => (await import('./commands/emit.js')).IntendCommand],
  ['do', async () => (await import('./commands/emit.js')).DoCommand],
  ['know', async () => (await import('./commands/emit.js')).KnowCommand],
  ['learn', async () => (await import('./commands/emit.js')).LearnCommand],
  ['emit', async () => (await import('./commands/emit.js')).EmitCommand],
  ['thread records', async () => (await import('./commands/thread.js')).ThreadRecordsCommand],
  ['thread list', async () => (await import('./commands/thread.js')).ThreadListCommand],
  ['namespace create', async () => (await import('./commands/namespace.js')).NamespaceCreateCommand],
  ['namespace list', async () => (await import('./commands/namespace.js')).NamespaceListCommand],
  ['namespace show', async () => (await import('./commands/namespace.js')).NamespaceShowCommand],
  ['namespace archive', async () => (await import('./commands/namespace.js')).NamespaceArchiveCommand],
  ['namespace delete', async () => (await import('./commands/namespace.js')).NamespaceDeleteCommand],
  ['fleet sync add', async () => (await import('./commands/fleet-sync.js')).FleetSyncAddCommand],
  ['fleet sync list', async () => (await import('./commands/fleet-sync.js')).FleetSyncListCommand],
  ['fleet sync status', async () => (await import('./commands/fleet-sync.js')).FleetSyncStatusCommand],
  ['fleet sync pause', async () => (await import('./commands/fleet-sync.js')).FleetSyncPauseCommand],
  ['fleet sync resume', async () => (await import('./commands/fleet-sync.js')).FleetSyncResumeCommand],
  ['fleet sync kick', async () => (await import('./commands/fleet-sync.js')).FleetSyncKickCommand],
  ['fleet sync reset', async () => (await import('./commands/fleet-sync.js')).FleetSyncResetCommand],
  ['fleet sync remove', async () => (await import('./commands/fleet-sync.js')).FleetSyncRemoveCommand],
  ['fleet sync rejections', async () => (await import('./commands/fleet-sync.js')).FleetSyncRejectionsCommand],
  ['fleet sync audit', async () => (await import('./commands/audit.js')).FleetSyncAuditCommand],
  ['fleet sync peers discover', async () => (await import('./commands/peers.js')).FleetSyncPeersDiscoverCommand],
  ['fleet sync peers flush', async () => (await import('./commands/peers-flush.js')).FleetSyncPeersFlushCommand],
  ['identity publish-did-web', async () => (await import('./commands/identity.js')).IdentityPublishDidWebCommand],
  ['discover', async () => (await import('./commands/discover.js')).DiscoverCommand],
  ['relay register', async () => (await import('./commands/relay.js')).RelayRegisterCommand],
  ['relay unregister', async () => (await import('./commands/relay.js')).RelayUnregisterCommand],
  ['relay list', async () => (await import('./commands/relay.js')).RelayListCommand],
  ['relay mailboxes', async () => (await import('./commands/relay.js')).RelayMailboxesCommand],
  ['config relay set', async () => (await import('./commands/relay.js')).ConfigRelaySetCommand],
  ['config relay unset', async () => (await import('./commands/relay.js')).ConfigRelayUnsetCommand],
  ['config relay list', async () => (await import('./commands/relay.js')).ConfigRelayListCommand],
  ['federation pair', async () => (await import('./commands/federation.js')).FederationPairCommand],
  ['federation invite', async () => (await import('./commands/federation.js')).FederationInviteCommand],
  ['federation requests', async () => (await import('./commands/federation.js')).FederationRequestsCommand],
  ['federation approve', async () => (await import('./commands/federation.js')).FederationApproveCommand],
  ['federation reject', async () => (await import('./commands/federation.js')).FederationRejectCommand],
  ['federation block', async () => (await import('./commands/federation.js')).FederationBlockCommand],
  ['federation unblock', async () => (await import('./commands/federation.js')).FederationUnblockCommand],
  ['federation blocklist', async () => (await import('./commands/federation.js')).FederationBlocklistCommand],
  ['federation list', async () => (await import('./commands/federation.js')).FederationListCommand],
  ['federation show', async () => (await import('./commands/federation.js')).FederationShowCommand],
  ['federation pause', async () => (await import('./commands/federation.js')).FederationPauseCommand],
  ['federation resume', async () => (await import('./commands/federation.js')).FederationResumeCommand],
  ['federation revoke', async () => (await import('./commands/federation.js')).FederationRevokeCommand],
  ['federation refresh', async () => (await import('./commands/federation.js')).FederationRefreshCommand],
  ['sync', async () => (await import('./commands/sync.js')).SyncCommand],
  ['consent grant', async () => (await import('./commands/consent.js')).ConsentGrantCommand],
  ['consent list', async () => (await import('./commands/consent.js')).ConsentListCommand],
  ['consent revoke', async () => (await import('./commands/consent.js')).ConsentRevokeCommand],
  ['consent bind', async () => (await import('./commands/consent.js')).ConsentBindCommand],
  ['consent unbind', async () => (await import('./commands/consent.js')).ConsentUnbindCommand],
  ['export', async () => (await import('./commands/bundle.js')).ExportCommand],
  ['import', async () => (await import('./commands/bundle.js')).ImportCommand],
  ['storage migrate', async () => (await import('./commands/storage.js')).StorageMigrateCommand],
  ['status', async () => (await import('./commands/status.js')).StatusCommand],
  ['doctor', async () => (await import('./commands/doctor.js')).DoctorCommand],
  ['ui', async () => (await import('./commands/ui.js')).UiCommand],
  ['directory register', async () => (await import('./commands/directory.js')).DirectoryRegisterCommand],
  ['directory unregister', async () => (await import('./commands/directory.js')).DirectoryUnregisterCommand],
  ['directory import', async () => (await import('./commands/directory.js')).DirectoryImportCommand],
]

process.exitCode = await runCli(COMMANDS, process.argv.slice(2))
