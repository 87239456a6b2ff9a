/// How large a configuration Keyway carries: the console refuses more, the wire refuses more,
/// and every table between the processes is sized for it (issue 11: 100,000 policies and
/// 20,000 SAs configured, reported and printable).
public enum ScaleLimits {
    /// `/ip ipsec policy` items (configured; generated ones are bounded apart, GeneratedPolicyRule).
    public static let policies = 100_000
    /// Policies generate-policy may create, in all (GeneratedPolicyRule).
    public static let generatedPolicies = 1024
    /// `/ip ipsec peer` items.
    public static let peers = 10_000
    /// `/ip ipsec manual-sa` items (each keys at most two SAs per protocol).
    public static let manualSAs = 10_000
    /// Manual SA records the datapath is given (in and out, AH and ESP).
    public static let manualSARecords = 4 * manualSAs
    /// Negotiated SAs the datapath holds at most (both directions, AH and ESP).
    public static let negotiatedSAs = 32_768
    /// Every SA the datapath reports: manual and negotiated.
    public static let installedSAs = manualSARecords + negotiatedSAs
    /// Phase 1 SAs keyway-ike reports (each live one, any state).
    public static let phase1SAs = 32_768
}
