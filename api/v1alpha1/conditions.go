package v1alpha1

// Condition types and reasons. Every condition a controller of this operator writes uses
// one of these, so that users and tools can rely on them.

// ServerClaim condition types.
const (
	// ServerClaimBound is True while the claim holds a Reserved server; its reason says
	// why not otherwise.
	ServerClaimBound = "Bound"
	// ServerClaimLeaseExpiring is True within the warning lead time before the end of the
	// claim's lease (spec.leaseDuration); absent otherwise.
	ServerClaimLeaseExpiring = "LeaseExpiring"
	// ServerClaimReady is True once the bound server's boot configuration is Ready and the
	// server's power matches the claim.
	ServerClaimReady = "Ready"
)

// ServerClaim condition reasons.
const (
	// ReasonBound: the claim holds its server.
	ReasonBound = "Bound"
	// ReasonServerNotFound: spec.serverRef names a server that does not exist.
	ReasonServerNotFound = "ServerNotFound"
	// ReasonNoMatchingServer: no server matches the claim's selector (or any, when none is given).
	ReasonNoMatchingServer = "NoMatchingServer"
	// ReasonServerNotAvailable: the server exists but is not Available, not powered off,
	// or being deleted.
	ReasonServerNotAvailable = "ServerNotAvailable"
	// ReasonServerCordoned: the server is marked unclaimable.
	ReasonServerCordoned = "ServerCordoned"
	// ReasonTaintNotTolerated: the server has a NoBind taint the claim does not tolerate.
	ReasonTaintNotTolerated = "TaintNotTolerated"
	// ReasonServerClaimedByOther: the server is bound to another claim.
	ReasonServerClaimedByOther = "ServerClaimedByOther"
	// ReasonSelectorMismatch: spec.serverRef names a server whose labels do not match spec.serverSelector.
	ReasonSelectorMismatch = "SelectorMismatch"
	// ReasonServerParked: the server is parked (or parking was requested).
	ReasonServerParked = "ServerParked"
	// ReasonServerError: the bound server's BMC cannot be used; the server's BMCReachable
	// condition says why. The binding is kept.
	ReasonServerError = "ServerError"
	// ReasonServerDeleting: the bound server is being deleted.
	ReasonServerDeleting = "ServerDeleting"
	// ReasonBindingLost: the server the claim was bound to no longer points back at it.
	ReasonBindingLost = "BindingLost"
	// ReasonBindingRefused (event on a Server): the server referenced a claim that never
	// recorded it (gone, being deleted, or bound to another server); the reference is removed
	// and the server was never powered on for it.
	ReasonBindingRefused = "BindingRefused"
	// ReasonWaitingForServer: the binding is written and the server controller has not yet
	// marked the server Reserved.
	ReasonWaitingForServer = "WaitingForServer"
	// ReasonInvalidSelector: spec.serverSelector cannot be parsed.
	ReasonInvalidSelector = "InvalidSelector"
	// ReasonBootConfigurationPending: the boot configuration is not Ready yet.
	ReasonBootConfigurationPending = "BootConfigurationPending"
	// ReasonBootConfigurationFailed: the boot configuration is in Error.
	ReasonBootConfigurationFailed = "BootConfigurationFailed"
	// ReasonServerPoweringOn: the server is being powered to the claim's wish.
	ReasonServerPoweringOn = "ServerPoweringOn"
	// ReasonPowerOnQueued: the server waits for its turn to power on in its power domain.
	ReasonPowerOnQueued = "PowerOnQueued"
	// ReasonServerPoweringOff: the server is being powered off as the claim asks.
	ReasonServerPoweringOff = "ServerPoweringOff"
	// ReasonReady: the server booted its configuration and its power matches the claim.
	ReasonReady = "Ready"
	// ReasonIgnored: the claim carries the ignore operation annotation.
	ReasonIgnored = "Ignored"
	// ReasonQuotaExceeded: binding a fitting server would exceed a limit of a ServerQuota of
	// the claim's namespace; the message names the quota and the limit.
	ReasonQuotaExceeded = "QuotaExceeded"
	// ReasonLeaseExpiring: the claim's lease ends within the warning lead time.
	ReasonLeaseExpiring = "LeaseExpiring"
	// ReasonLeaseExpired: the claim's lease ended; its server was released and the claim
	// is never bound again.
	ReasonLeaseExpired = "LeaseExpired"
)

// Server condition types.
const (
	// ServerBMCReachable is True while the BMC answers with valid credentials.
	ServerBMCReachable = "BMCReachable"
	// ServerPoweringOn is True while a power-on issued by the controller is in flight.
	ServerPoweringOn = "PoweringOn"
	// ServerPowerOnQueued is True while a power-on waits for its turn in the server's power
	// domain (--max-concurrent-power-ons, --power-on-interval); absent otherwise.
	ServerPowerOnQueued = "PowerOnQueued"
	// ServerPoweringOff is True while a power-off issued by the controller is in flight.
	ServerPoweringOff = "PoweringOff"
	// ServerWaitingForPowerOff is True while a release waits for a BMC-confirmed power-off.
	ServerWaitingForPowerOff = "WaitingForPowerOff"
	// ServerDiscovered is True once the inventory was read from the BMC.
	ServerDiscovered = "Discovered"
	// ServerNetworkBoot is True once a one-time network boot was set for the bound claim.
	ServerNetworkBoot = "NetworkBootConfigured"
	// ServerDeletionBlocked is True while a server being deleted waits for its claim to go.
	ServerDeletionBlocked = "DeletionBlocked"
	// ServerBootOrderApplied is True while the BMC reports the boot order spec.bootOrder asks
	// for. It is absent while spec.bootOrder is empty.
	ServerBootOrderApplied = "BootOrderApplied"
)

// Server condition reasons.
const (
	// ReasonBMCReachable: the BMC answered.
	ReasonBMCReachable = "Reachable"
	// ReasonBMCUnreachable: the BMC did not answer (network, timeout, 5xx).
	ReasonBMCUnreachable = "Unreachable"
	// ReasonBMCUnauthorized: the BMC rejected the credentials.
	ReasonBMCUnauthorized = "Unauthorized"
	// ReasonBMCTLSError: the BMC's TLS certificate could not be verified.
	ReasonBMCTLSError = "TLSError"
	// ReasonSystemNotFound: the BMC has no system with spec.systemUUID.
	ReasonSystemNotFound = "SystemNotFound"
	// ReasonSecretNotFound: the BMCSecret is missing or lacks username/password.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonBMCNotReady: the referenced BMC object is Pending or in Error.
	ReasonBMCNotReady = "BMCNotReady"
	// ReasonBMCNotFound: the referenced BMC object does not exist.
	ReasonBMCNotFound = "BMCNotFound"
	// ReasonNoBMC: neither spec.bmcRef nor spec.bmc is set.
	ReasonNoBMC = "NoBMCConfigured"
	// ReasonPowerOnIssued: a power-on was sent to the BMC.
	ReasonPowerOnIssued = "PowerOnIssued"
	// ReasonPowerOffIssued: a graceful power-off was sent to the BMC.
	ReasonPowerOffIssued = "PowerOffIssued"
	// ReasonForceOffIssued: a graceful power-off timed out and a forced one was sent.
	ReasonForceOffIssued = "ForceOffIssued"
	// ReasonPowerOffConfirmed: the BMC reports the server off.
	ReasonPowerOffConfirmed = "PowerOffConfirmed"
	// ReasonPowerStateReached: the BMC reports the desired power state.
	ReasonPowerStateReached = "PowerStateReached"
	// ReasonInventoryRead: the inventory was read from the BMC.
	ReasonInventoryRead = "InventoryRead"
	// ReasonClaimFirstBoot: the one-time network boot was set for the claim's first boot.
	ReasonClaimFirstBoot = "ClaimFirstBoot"
	// ReasonUnsupportedProtocol: the BMC speaks a protocol this operator has no client for.
	ReasonUnsupportedProtocol = "UnsupportedProtocol"
	// ReasonPowerSuperseded: a power change in flight was replaced by one in the other direction.
	ReasonPowerSuperseded = "Superseded"
	// ReasonWaitingForClaim: the server is being deleted and waits until its claim is gone.
	ReasonWaitingForClaim = "WaitingForClaim"
	// ReasonBootOrderApplied: the BMC reports the boot order of spec.bootOrder.
	ReasonBootOrderApplied = "Applied"
	// ReasonBootOrderRejected: the BMC refused the boot order of spec.bootOrder, e.g. a
	// device it does not have; the message quotes the BMC.
	ReasonBootOrderRejected = "BootOrderRejected"
	// ReasonBootOrderPending: the BMC accepted the boot order but still reports another one.
	ReasonBootOrderPending = "BootOrderPending"
)

// ServerBootConfiguration condition types and reasons.
const (
	// BootConfigurationImageResolved is True once the image is resolved and pinned.
	BootConfigurationImageResolved = "ImageResolved"
	// BootConfigurationIgnitionValid is True once the ignition Secret holds a valid config.
	BootConfigurationIgnitionValid = "IgnitionValid"
	// BootConfigurationBootStateReceived is True once the server reported it booted.
	BootConfigurationBootStateReceived = "BootStateReceived"
	// BootConfigurationServerFound is True while spec.serverRef names a Server that exists;
	// False (reason ServerNotFound) keeps the configuration Pending.
	BootConfigurationServerFound = "ServerFound"

	// ReasonImageNotFound: the registry has no such image.
	ReasonImageNotFound = "ImageNotFound"
	// ReasonRegistryUnreachable: the registry did not answer.
	ReasonRegistryUnreachable = "RegistryUnreachable"
	// ReasonRegistryNotAllowed: the image's registry is not among the manager's allowed
	// registries, or its address is a loopback, link-local or cloud metadata address that
	// is not listed.
	ReasonRegistryNotAllowed = "RegistryNotAllowed"
	// ReasonInvalidImage: the image lacks a kernel or initrd layer, or its reference is invalid.
	ReasonInvalidImage = "InvalidImage"
	// ReasonImageResolved: the image was resolved and pinned by digest.
	ReasonImageResolved = "ImageResolved"
	// ReasonIgnitionSecretNotFound: the ignition Secret does not exist.
	ReasonIgnitionSecretNotFound = "IgnitionSecretNotFound"
	// ReasonIgnitionKeyMissing: the ignition Secret lacks the ignition key.
	ReasonIgnitionKeyMissing = "IgnitionKeyMissing"
	// ReasonInvalidIgnition: the ignition Secret's content is not a valid config.
	ReasonInvalidIgnition = "InvalidIgnition"
	// ReasonIgnitionValid: the ignition config is valid.
	ReasonIgnitionValid = "IgnitionValid"
	// ReasonBootStateReceived: the server reported that it booted.
	ReasonBootStateReceived = "BootStateReceived"
	// ReasonBootFailed: the server reported that it did not boot.
	ReasonBootFailed = "BootFailed"
	// ReasonServerFound: the server spec.serverRef names exists.
	ReasonServerFound = "ServerFound"

	// BootConfigurationBootCredentialMisused is True once a boot credential was presented
	// again after its ignition fetch limit, or from an address it is not pinned to.
	BootConfigurationBootCredentialMisused = "BootCredentialMisused"
	// ReasonIgnitionRefetched: the ignition was requested again after the fetch limit.
	ReasonIgnitionRefetched = "IgnitionRefetched"
	// ReasonWrongSourceAddress: the credential was presented from another address than the
	// one it is pinned to.
	ReasonWrongSourceAddress = "WrongSourceAddress"
	// ReasonAnotherRequester: a boot was requested from another address while the boot's
	// credential was out: someone else asked first (or the machine changed its address).
	ReasonAnotherRequester = "AnotherRequester"
	// ReasonBootNotCompleted: a credential was issued and its boot never fetched the ignition
	// before a new window opened.
	ReasonBootNotCompleted = "BootNotCompleted"
)

// ServerReadinessRule condition types and reasons. Ready=False says why a rule is not
// enforced: ReasonInvalidSelector, ReasonRuleNameTooLong or ReasonRuleDeleting.
const (
	// ServerReadinessRuleReady is True while the rule is enforced on the Servers it selects.
	ServerReadinessRuleReady = "Ready"

	// ReasonRuleEnforced: the rule taints the Servers it selects that lack its conditions.
	ReasonRuleEnforced = "Enforced"
	// ReasonRuleNameTooLong: the name of a BootstrapOnly rule is longer than
	// MaxBootstrapOnlyRuleNameLength, so its bootstrap-completed annotation key would be
	// invalid; the rule taints nothing.
	ReasonRuleNameTooLong = "NameTooLong"
	// ReasonRuleDeleting: the rule is being deleted and waits until its taints are removed.
	ReasonRuleDeleting = "Deleting"
)

// BMC condition types. Ready=False says why the BMC cannot be used with one of
// ReasonSecretNotFound, ReasonBMCUnauthorized, ReasonBMCUnreachable, ReasonBMCTLSError,
// ReasonUnsupportedProtocol, ReasonNoAddress, ReasonNoSystems or ReasonBMCError.
const (
	// BMCReady is True while the BMC answers and its systems are enrolled.
	BMCReady = "Ready"
	// BMCSystemsMissing is True while servers enrolled from the BMC are no longer reported by it.
	BMCSystemsMissing = "SystemsMissing"
	// BMCDuplicateSystemUUIDs is True while the BMC reports two or more systems with one
	// UUID; those systems are not enrolled (a Server is one system, found by its UUID).
	BMCDuplicateSystemUUIDs = "DuplicateSystemUUIDs"
	// BMCDeletionBlocked is True while a BMC being deleted waits until none of its servers
	// is bound to a claim.
	BMCDeletionBlocked = "DeletionBlocked"
	// BMCReset is True from the moment the operator reset the BMC (Redfish Manager.Reset)
	// until the BMC answers again or BMCOptions.ResetWaitingInterval has passed; False says
	// how the last reset ended, or why a due reset was not sent.
	BMCReset = "Reset"

	// ReasonUserRequested: the BMC was reset for the operation annotation.
	ReasonUserRequested = "UserRequested"
	// ReasonAutoResetting: the BMC was reset because its Redfish service had been failing for
	// longer than the failure reset delay.
	ReasonAutoResetting = "AutoResetting"
	// ReasonResetComplete: the BMC answered again after the reset.
	ReasonResetComplete = "ResetComplete"
	// ReasonResetTimedOut: the BMC did not answer within the waiting interval after the reset.
	ReasonResetTimedOut = "ResetTimedOut"
	// ReasonResetFailed: the reset could not be sent or the BMC refused it.
	ReasonResetFailed = "ResetFailed"
	// ReasonResetLimitReached: a reset is due but the BMC was reset as often as allowed
	// within the last hour.
	ReasonResetLimitReached = "ResetLimitReached"

	// ReasonNoSystems: the BMC reports no systems.
	ReasonNoSystems = "NoSystems"
	// ReasonEnrolled: the BMC's systems are enrolled as Servers.
	ReasonEnrolled = "Enrolled"
	// ReasonSystemsMissing: some enrolled systems are gone from the BMC.
	ReasonSystemsMissing = "SystemsMissing"
	// ReasonAllSystemsPresent: every enrolled system is still reported.
	ReasonAllSystemsPresent = "AllSystemsPresent"
	// ReasonDuplicateSystemUUIDs: systems of the BMC share a UUID.
	ReasonDuplicateSystemUUIDs = "DuplicateSystemUUIDs"
	// ReasonSystemUUIDsUnique: every system of the BMC has a UUID of its own.
	ReasonSystemUUIDsUnique = "SystemUUIDsUnique"
	// ReasonServersClaimed: servers reached through the BMC are still bound to claims.
	ReasonServersClaimed = "ServersClaimed"
	// ReasonNoAddress: the BMC has neither spec.hostname nor spec.access.ip (nor an
	// Endpoint with spec.ip).
	ReasonNoAddress = "NoAddress"
	// ReasonEndpointNotFound: the Endpoint the BMC's deprecated spec.endpointRef names does
	// not exist.
	ReasonEndpointNotFound = "EndpointNotFound"
	// ReasonBMCError: the BMC answered with an error no other reason describes.
	ReasonBMCError = "BMCError"
)

// BMCUser condition types. Ready=False says why the account is not in place with a working
// password: one of the BMC reasons ReasonBMCNotFound, ReasonSecretNotFound,
// ReasonBMCUnauthorized, ReasonBMCUnreachable, ReasonBMCTLSError, ReasonUnsupportedProtocol,
// ReasonNoAddress, ReasonBMCError and ReasonNoBMC (no spec.bmcRef), or one of the reasons
// below.
const (
	// BMCUserReady is True while the account exists on the BMC with spec.roleID and the
	// credentials of status.effectiveBMCSecretRef log in.
	BMCUserReady = "Ready"

	// ReasonAccountSynced: the account exists with the role asked for and its password works.
	ReasonAccountSynced = "AccountSynced"
	// ReasonAccountServiceUnsupported: the BMC offers no Redfish AccountService.
	ReasonAccountServiceUnsupported = "AccountServiceUnsupported"
	// ReasonRoleNotFound: the BMC has no role spec.roleID.
	ReasonRoleNotFound = "RoleNotFound"
	// ReasonNoFreeAccountSlot: the BMC has no room for another account.
	ReasonNoFreeAccountSlot = "NoFreeAccountSlot"
	// ReasonAccountRejected: the BMC refused to create or change the account.
	ReasonAccountRejected = "AccountRejected"
	// ReasonInvalidPasswordPolicy: the BMC's password rules leave no password to generate
	// (MaxPasswordLength below 4, or below MinPasswordLength).
	ReasonInvalidPasswordPolicy = "InvalidPasswordPolicy"
	// ReasonSecretInvalid: the BMCSecret of spec.bmcSecretRef lacks username or password, or
	// its username is not spec.userName.
	ReasonSecretInvalid = "SecretInvalid"
	// ReasonLoginFailed: the BMC took the password of spec.bmcSecretRef, but logging in with
	// it fails; status.effectiveBMCSecretRef is left as it was.
	ReasonLoginFailed = "LoginFailed"
	// ReasonBMCAdminAccount: spec.userName is the account the operator manages the BMC with
	// (the BMC's own BMCSecret); the controller leaves it alone.
	ReasonBMCAdminAccount = "BMCAdminAccount"
)

// Server conditions of the agent boots between two tenants: discovery (Discovered, with the
// reasons below when --discovery-boot is on) and wipe (Wiped).
const (
	// ServerWiped is True once the last wipe succeeded, False while one runs or after one
	// failed. Absent on servers that were never wiped.
	ServerWiped = "Wiped"

	// ReasonAgentBooting: the in-band agent is booting over the network; its report is due
	// before the agent boot timeout.
	ReasonAgentBooting = "AgentBooting"
	// ReasonBootConfigurationNotReady: the agent's boot configuration did not become Ready
	// within the agent boot timeout (image not resolvable, ...); retried on a backoff.
	ReasonBootConfigurationNotReady = "BootConfigurationNotReady"
	// ReasonReportTimeout: the agent booted but sent no report within the agent boot
	// timeout; retried on a backoff.
	ReasonReportTimeout = "ReportTimeout"
	// ReasonReportRejected: the agent's report was not trusted (the boot's credential was
	// misused) or not usable; a discovery is retried, a wipe fails.
	ReasonReportRejected = "ReportRejected"
	// ReasonReportAccepted: the agent's discovery report was accepted and merged into status.
	ReasonReportAccepted = "ReportAccepted"
	// ReasonWipeInProgress: a wipe is running.
	ReasonWipeInProgress = "WipeInProgress"
	// ReasonWipeSucceeded: every disk was wiped and verified.
	ReasonWipeSucceeded = "WipeSucceeded"
	// ReasonWipeFailed: a disk could not be wiped or verified; the server stays out of the
	// pool (Error) until an operator acts. The message names the disk.
	ReasonWipeFailed = "WipeFailed"
	// ReasonWipeSkipped: an operator skipped the wipe with the skip-wipe annotation.
	ReasonWipeSkipped = "WipeSkipped"
	// ReasonNoWipeMethod: neither the in-band agent (no --discovery-image) nor the BMC's
	// Drive.SecureErase can wipe this server; it stays out of the pool.
	ReasonNoWipeMethod = "NoWipeMethod"
)

// BMC condition EventsSubscribed (with --event-url): whether the BMC sends its Redfish alerts
// and metric reports to the operator's event receiver.
const (
	// BMCEventsSubscribed is True while both event subscriptions of the BMC are recorded in
	// its status; False says why not, or, for a BMC being deleted, why they could not be
	// removed yet.
	BMCEventsSubscribed = "EventsSubscribed"

	// ReasonSubscribed: the BMC has both subscriptions.
	ReasonSubscribed = "Subscribed"
	// ReasonSubscribeFailed: the BMC refused a subscription or did not answer; the reason and
	// HTTP status are in the message. It is tried again at the next resync.
	ReasonSubscribeFailed = "SubscribeFailed"
	// ReasonEventServiceUnsupported: the BMC has no Redfish EventService, or it is disabled.
	ReasonEventServiceUnsupported = "EventServiceUnsupported"
	// ReasonUnsubscribeFailed: the BMC is being deleted and its subscriptions could not be
	// removed yet; the deletion is retried until --event-unsubscribe-timeout after it
	// began, then the subscriptions are left behind with a Warning event.
	ReasonUnsubscribeFailed = "UnsubscribeFailed"
)
