#!/usr/bin/env node
import { VERSION } from '@spl/daemon/home'
import { Builtins, Cli } from 'clipanion'
import {
  ConsentBindCommand,
  ConsentGrantCommand,
  ConsentListCommand,
  ConsentRevokeCommand,
  ConsentUnbindCommand,
} from './commands/consent.js'
import { DirectoryImportCommand, DirectoryRegisterCommand, DirectoryUnregisterCommand } from './commands/directory.js'
import { DiscoverCommand } from './commands/discover.js'
import { DoctorCommand } from './commands/doctor.js'
import { DoCommand, EmitCommand, IntendCommand, KnowCommand, LearnCommand } from './commands/emit.js'
import {
  FederationApproveCommand,
  FederationBlockCommand,
  FederationBlocklistCommand,
  FederationInviteCommand,
  FederationListCommand,
  FederationPairCommand,
  FederationPauseCommand,
  FederationRefreshCommand,
  FederationRejectCommand,
  FederationRequestsCommand,
  FederationResumeCommand,
  FederationRevokeCommand,
  FederationShowCommand,
  FederationUnblockCommand,
} from './commands/federation.js'
import {
  FleetSyncAddCommand,
  FleetSyncKickCommand,
  FleetSyncListCommand,
  FleetSyncPauseCommand,
  FleetSyncRejectionsCommand,
  FleetSyncRemoveCommand,
  FleetSyncResetCommand,
  FleetSyncResumeCommand,
  FleetSyncStatusCommand,
} from './commands/fleet-sync.js'
import { IdentityPublishDidWebCommand } from './commands/identity.js'
import { InitCommand } from './commands/init.js'
import {
  NamespaceArchiveCommand,
  NamespaceCreateCommand,
  NamespaceDeleteCommand,
  NamespaceListCommand,
  NamespaceShowCommand,
} from './commands/namespace.js'
import { FleetSyncPeersDiscoverCommand } from './commands/peers.js'
import { FleetSyncPeersFlushCommand } from './commands/peers-flush.js'
import { ServeCommand } from './commands/serve.js'
import { StatusCommand } from './commands/status.js'
import { SyncCommand } from './commands/sync.js'
import { ThreadListCommand, ThreadRecordsCommand } from './commands/thread.js'
import { VersionCommand } from './commands/version.js'

const cli = new Cli({ binaryLabel: 'spl', binaryName: 'spl', binaryVersion: VERSION, enableCapture: false })
for (const command of [
  InitCommand,
  ServeCommand,
  VersionCommand,
  IntendCommand,
  DoCommand,
  KnowCommand,
  LearnCommand,
  EmitCommand,
  ThreadRecordsCommand,
  ThreadListCommand,
  NamespaceCreateCommand,
  NamespaceListCommand,
  NamespaceShowCommand,
  NamespaceArchiveCommand,
  NamespaceDeleteCommand,
  FleetSyncAddCommand,
  FleetSyncListCommand,
  FleetSyncStatusCommand,
  FleetSyncPeersDiscoverCommand,
  FleetSyncPeersFlushCommand,
  IdentityPublishDidWebCommand,
  DiscoverCommand,
  FederationPairCommand,
  FederationInviteCommand,
  FederationRequestsCommand,
  FederationApproveCommand,
  FederationRejectCommand,
  FederationBlockCommand,
  FederationUnblockCommand,
  FederationBlocklistCommand,
  FederationListCommand,
  FederationShowCommand,
  FederationPauseCommand,
  FederationResumeCommand,
  FederationRevokeCommand,
  FederationRefreshCommand,
  FleetSyncPauseCommand,
  FleetSyncResumeCommand,
  FleetSyncKickCommand,
  FleetSyncResetCommand,
  FleetSyncRemoveCommand,
  FleetSyncRejectionsCommand,
  SyncCommand,
  ConsentGrantCommand,
  ConsentListCommand,
  ConsentRevokeCommand,
  ConsentBindCommand,
  ConsentUnbindCommand,
  StatusCommand,
  DoctorCommand,
  DirectoryRegisterCommand,
  DirectoryUnregisterCommand,
  DirectoryImportCommand,
  Builtins.HelpCommand,
]) {
  cli.register(command)
}

const code = await cli.run(process.argv.slice(2))
process.exitCode = code
