/// The closed set of messages, for exhaustive dispatch.
public enum Message: Sendable, Equatable {
    case hello(Hello)
    case fdGrant(FdGrant)
    case enterSandbox(EnterSandbox)
    case peerRestarted(PeerRestarted)
    case shutdown(Shutdown)
    case reloadConfig(ReloadConfig)
    case ping(Ping)
    case pong(Pong)
    case statusRequest(StatusRequest)
    case statusReply(StatusReply)
    case counterRequest(CounterRequest)
    case counterReply(CounterReply)
    case errorReply(ErrorReply)
    case consoleCommand(ConsoleCommand)
    case consoleReply(ConsoleReply)
    case accessPolicy(AccessPolicy)
    case datapathConfig(DatapathConfig)
    case generatedPolicySet(GeneratedPolicySet)
    case datapathState(DatapathState)
    case flushSAs(FlushSAs)
    case policyAuthority(PolicyAuthority)
    case ikeConfig(IKEConfig)
    case saInstall(SAInstall)
    case saRemove(SARemove)
    case acquire(Acquire)
    case ikeDatagram(IKEDatagram)
    case ikeState(IKEState)
    case signRequest(SignRequest)
    case signReply(SignReply)
    case hostAddresses(HostAddresses)
    case refusalReport(RefusalReport)
    case signAnnounce(SignAnnounce)
    case auditEvent(AuditEvent)
    case auditRecords(AuditRecords)
    case consoleOutput(ConsoleOutput)
    case outerPaths(OuterPaths)
    case ikev2SignRequest(IKEv2SignRequest)
    case ikev2SignReply(IKEv2SignReply)
    /// One page of a message too large for one datagram (Paging.swift); Link reassembles them.
    case page(Page)

    public var type: MessageType { payload.typeOfSelf }

    private var payload: any WireMessage {
        switch self {
        case .hello(let m): return m
        case .fdGrant(let m): return m
        case .enterSandbox(let m): return m
        case .peerRestarted(let m): return m
        case .shutdown(let m): return m
        case .reloadConfig(let m): return m
        case .ping(let m): return m
        case .pong(let m): return m
        case .statusRequest(let m): return m
        case .statusReply(let m): return m
        case .counterRequest(let m): return m
        case .counterReply(let m): return m
        case .errorReply(let m): return m
        case .consoleCommand(let m): return m
        case .consoleReply(let m): return m
        case .accessPolicy(let m): return m
        case .datapathConfig(let m): return m
        case .generatedPolicySet(let m): return m
        case .datapathState(let m): return m
        case .flushSAs(let m): return m
        case .policyAuthority(let m): return m
        case .ikeConfig(let m): return m
        case .saInstall(let m): return m
        case .saRemove(let m): return m
        case .acquire(let m): return m
        case .ikeDatagram(let m): return m
        case .ikeState(let m): return m
        case .signRequest(let m): return m
        case .signReply(let m): return m
        case .hostAddresses(let m): return m
        case .refusalReport(let m): return m
        case .signAnnounce(let m): return m
        case .auditEvent(let m): return m
        case .auditRecords(let m): return m
        case .consoleOutput(let m): return m
        case .outerPaths(let m): return m
        case .ikev2SignRequest(let m): return m
        case .ikev2SignReply(let m): return m
        case .page(let m): return m
        }
    }

    func encodeBody(to w: inout WireWriter) { payload.encode(to: &w) }

    static func decodeBody(_ type: MessageType, from r: inout WireReader) throws(WireError) -> Message {
        switch type {
        case .hello: return .hello(try Hello(from: &r))
        case .fdGrant: return .fdGrant(try FdGrant(from: &r))
        case .enterSandbox: return .enterSandbox(try EnterSandbox(from: &r))
        case .peerRestarted: return .peerRestarted(try PeerRestarted(from: &r))
        case .shutdown: return .shutdown(try Shutdown(from: &r))
        case .reloadConfig: return .reloadConfig(try ReloadConfig(from: &r))
        case .ping: return .ping(try Ping(from: &r))
        case .pong: return .pong(try Pong(from: &r))
        case .statusRequest: return .statusRequest(try StatusRequest(from: &r))
        case .statusReply: return .statusReply(try StatusReply(from: &r))
        case .counterRequest: return .counterRequest(try CounterRequest(from: &r))
        case .counterReply: return .counterReply(try CounterReply(from: &r))
        case .errorReply: return .errorReply(try ErrorReply(from: &r))
        case .consoleCommand: return .consoleCommand(try ConsoleCommand(from: &r))
        case .consoleReply: return .consoleReply(try ConsoleReply(from: &r))
        case .accessPolicy: return .accessPolicy(try AccessPolicy(from: &r))
        case .datapathConfig: return .datapathConfig(try DatapathConfig(from: &r))
        case .generatedPolicySet: return .generatedPolicySet(try GeneratedPolicySet(from: &r))
        case .datapathState: return .datapathState(try DatapathState(from: &r))
        case .flushSAs: return .flushSAs(try FlushSAs(from: &r))
        case .policyAuthority: return .policyAuthority(try PolicyAuthority(from: &r))
        case .ikeConfig: return .ikeConfig(try IKEConfig(from: &r))
        case .saInstall: return .saInstall(try SAInstall(from: &r))
        case .saRemove: return .saRemove(try SARemove(from: &r))
        case .acquire: return .acquire(try Acquire(from: &r))
        case .ikeDatagram: return .ikeDatagram(try IKEDatagram(from: &r))
        case .ikeState: return .ikeState(try IKEState(from: &r))
        case .signRequest: return .signRequest(try SignRequest(from: &r))
        case .signReply: return .signReply(try SignReply(from: &r))
        case .hostAddresses: return .hostAddresses(try HostAddresses(from: &r))
        case .refusalReport: return .refusalReport(try RefusalReport(from: &r))
        case .signAnnounce: return .signAnnounce(try SignAnnounce(from: &r))
        case .auditEvent: return .auditEvent(try AuditEvent(from: &r))
        case .auditRecords: return .auditRecords(try AuditRecords(from: &r))
        case .consoleOutput: return .consoleOutput(try ConsoleOutput(from: &r))
        case .outerPaths: return .outerPaths(try OuterPaths(from: &r))
        case .ikev2SignRequest: return .ikev2SignRequest(try IKEv2SignRequest(from: &r))
        case .ikev2SignReply: return .ikev2SignReply(try IKEv2SignReply(from: &r))
        case .page: return .page(try Page(from: &r))
        }
    }
}

extension WireMessage {
    var typeOfSelf: MessageType { Self.type }
}
