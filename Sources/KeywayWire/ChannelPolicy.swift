/// The security boundary between processes: which message types each receiver accepts from
/// each sender. Anything else is dropped, counted and audited by the receiver.
public enum ChannelPolicy {
    private static let fromParentToChild: Set<MessageType> = [.hello, .fdGrant, .enterSandbox, .peerRestarted,
                                                              .shutdown, .ping, .counterRequest]
    private static let betweenChildren: Set<MessageType> = [.hello, .ping, .pong]

    public static func allowed(from sender: Role, to receiver: Role) -> Set<MessageType> {
        switch (sender, receiver) {
        // The parent configures and supervises; only the monitor reloads configuration.
        // It tells IKE and the datapath the appliance's own addresses (no generated policy may cover them),
        // and the datapath the MTU of the interface toward each peer.
        case (.parent, .ike): return fromParentToChild.union([.hostAddresses])
        case (.parent, .datapath): return fromParentToChild.union([.hostAddresses, .outerPaths])
        case (.parent, .monitor):
            return fromParentToChild.union([.reloadConfig, .accessPolicy, .refusalReport, .auditRecords])
        // It hands the monitor every process's attributed audit events, for /log.
        // Children tell the parent who they are, answer its pings and say what happened (audit
        // events, which keywayd attributes by this link and writes to syslog); nothing else.
        case (.ike, .parent): return [.hello, .pong, .auditEvent]
        // The monitor, the authority on configuration, says what may exist: keywayd derives its
        // routes and the incoming-check table from that alone.
        case (.monitor, .parent): return [.hello, .pong, .auditEvent, .policyAuthority]
        // The datapath names the generated policies it holds; keywayd checks each against the configuration.
        case (.datapath, .parent): return [.hello, .pong, .auditEvent, .generatedPolicySet]
        // IKE installs and removes negotiated SAs; the datapath asks for SAs and hands over IKE's UDP 4500 share.
        case (.ike, .datapath): return betweenChildren.union([.saInstall, .saRemove])
        case (.datapath, .ike): return betweenChildren.union([.acquire, .ikeDatagram])
        // The monitor queries the others and receives their answers; it configures IKE.
        case (.monitor, .ike): return betweenChildren.union([.counterRequest, .ikeConfig, .signReply, .ikev2SignReply])
        // The monitor pushes policies and manual SAs (with their keys) to the datapath.
        case (.monitor, .datapath): return betweenChildren.union([.counterRequest, .datapathConfig, .flushSAs])
        case (.ike, .monitor): return betweenChildren.union([.counterReply, .ikeState, .signAnnounce, .signRequest,
                                                                    .ikev2SignRequest])
        case (.datapath, .monitor): return betweenChildren.union([.counterReply, .datapathState])
        // The control client asks; the monitor answers.
        case (.client, .monitor): return [.statusRequest, .counterRequest, .ping, .consoleCommand]
        case (.monitor, .client):
            return [.statusReply, .counterReply, .pong, .errorReply, .consoleReply, .consoleOutput]
        default: return []
        }
    }

    /// `.page` is accepted where some message that may be paged is; each page's own type is then
    /// checked against this table too (Frame.decode), so a page never carries what the channel refuses.
    public static func accepts(_ type: MessageType, from sender: Role, to receiver: Role) -> Bool {
        let allowed = allowed(from: sender, to: receiver)
        if type == .page { return allowed.contains { Paging.maximumBytes($0) != nil } }
        return allowed.contains(type)
    }
}
