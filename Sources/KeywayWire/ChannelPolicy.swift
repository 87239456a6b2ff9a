/// The security boundary between processes: which message types each receiver accepts from
/// each sender. Anything else is dropped, counted and audited by the receiver.
public enum ChannelPolicy {
    private static let fromParentToChild: Set<MessageType> = [.hello, .fdGrant, .enterSandbox, .peerRestarted, .shutdown, .ping, .counterRequest]
    private static let betweenChildren: Set<MessageType> = [.hello, .ping, .pong]

    public static func allowed(from sender: Role, to receiver: Role) -> Set<MessageType> {
        switch (sender, receiver) {
        // The parent configures and supervises; only the monitor reloads configuration.
        case (.parent, .ike), (.parent, .datapath): return fromParentToChild
        case (.parent, .monitor): return fromParentToChild.union([.reloadConfig, .accessPolicy])
        // Children tell the parent who they are and answer its pings; nothing else.
        case (.ike, .parent), (.monitor, .parent): return [.hello, .pong]
        // The datapath may ask for routes into its own TUN device and the incoming-check rules.
        case (.datapath, .parent): return [.hello, .pong, .routeSet, .incomingFilter]
        // IKE installs and removes negotiated SAs; the datapath asks for SAs and hands over IKE's UDP 4500 share.
        case (.ike, .datapath): return betweenChildren.union([.saInstall, .saRemove])
        case (.datapath, .ike): return betweenChildren.union([.acquire, .ikeDatagram])
        // The monitor queries the others and receives their answers; it configures IKE.
        case (.monitor, .ike): return betweenChildren.union([.counterRequest, .ikeConfig, .signReply])
        // The monitor pushes policies and manual SAs (with their keys) to the datapath.
        case (.monitor, .datapath): return betweenChildren.union([.counterRequest, .datapathConfig, .flushSAs])
        case (.ike, .monitor): return betweenChildren.union([.counterReply, .ikeState, .signRequest])
        case (.datapath, .monitor): return betweenChildren.union([.counterReply, .datapathState])
        // The control client asks; the monitor answers.
        case (.client, .monitor): return [.statusRequest, .counterRequest, .ping, .consoleCommand]
        case (.monitor, .client): return [.statusReply, .counterReply, .pong, .errorReply, .consoleReply]
        default: return []
        }
    }

    public static func accepts(_ type: MessageType, from sender: Role, to receiver: Role) -> Bool {
        allowed(from: sender, to: receiver).contains(type)
    }
}
