import RealModule   // swift-numerics: the elementary functions without a platform import in the core

private func sin(_ x: Double) -> Double { .sin(x) }
private func cos(_ x: Double) -> Double { .cos(x) }
private func tan(_ x: Double) -> Double { .tan(x) }
private func asin(_ x: Double) -> Double { .asin(x) }
private func acos(_ x: Double) -> Double { .acos(x) }
private func atan(_ x: Double) -> Double { .atan(x) }
private func atan2(_ y: Double, _ x: Double) -> Double { .atan2(y: y, x: x) }
private func sqrt(_ x: Double) -> Double { x.squareRoot() }

/// A point on the WGS84 ellipsoid, in degrees.
public struct GeoPoint: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var latitude: Double
    public var longitude: Double
    public init(latitude: Double, longitude: Double) { self.latitude = latitude; self.longitude = longitude }
    /// Finite, |latitude| ≤ 90, |longitude| ≤ 180.
    public var isValid: Bool {
        latitude.isFinite && longitude.isFinite && abs(latitude) <= 90 && abs(longitude) <= 180
    }
    public var description: String { "\(Geo.fixed(latitude, 6)),\(Geo.fixed(longitude, 6))" }
}

/// Distances and bearings between points. Haversine on the mean-radius sphere is what the convoy
/// uses (fast, within 0.5 % of the ellipsoid); Vincenty's inverse on WGS84 is the reference
/// (sub-millimetre where it converges).
public enum Geo {
    /// Mean Earth radius (IUGG R1), metres.
    public static let earthRadius = 6_371_008.8
    static let wgs84A = 6_378_137.0
    static let wgs84F = 1 / 298.257_223_563

    /// `v` with `digits` decimals (no Foundation in the core).
    public static func fixed(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return "\(v)" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let n = Int64((abs(v) * scale).rounded())
        let whole = n / Int64(scale), frac = n % Int64(scale)
        var f = String(frac)
        while f.count < digits { f = "0" + f }
        return (v < 0 && n != 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + f : "")
    }

    @inline(__always) static func rad(_ d: Double) -> Double { d * .pi / 180 }
    @inline(__always) static func deg(_ r: Double) -> Double { r * 180 / .pi }
    /// An angle in degrees brought into [0, 360).
    public static func normalize(_ degrees: Double) -> Double {
        let r = degrees.truncatingRemainder(dividingBy: 360)
        return r < 0 ? r + 360 : r
    }

    /// Great-circle distance in metres (haversine, sphere of `earthRadius`).
    public static func distance(_ a: GeoPoint, _ b: GeoPoint) -> Double {
        let φ1 = rad(a.latitude), φ2 = rad(b.latitude)
        let dφ = φ2 - φ1, dλ = rad(b.longitude - a.longitude)
        let h = sin(dφ / 2) * sin(dφ / 2) + cos(φ1) * cos(φ2) * sin(dλ / 2) * sin(dλ / 2)
        return 2 * earthRadius * asin(min(1, sqrt(h)))
    }

    /// Initial great-circle bearing from `a` to `b`, degrees clockwise from true north in [0, 360).
    public static func bearing(from a: GeoPoint, to b: GeoPoint) -> Double {
        let φ1 = rad(a.latitude), φ2 = rad(b.latitude), dλ = rad(b.longitude - a.longitude)
        let y = sin(dλ) * cos(φ2)
        let x = cos(φ1) * sin(φ2) - sin(φ1) * cos(φ2) * cos(dλ)
        return normalize(deg(atan2(y, x)))
    }

    /// The point `distance` metres from `start` along initial bearing `bearing` (sphere).
    public static func destination(from start: GeoPoint, bearing: Double, distance: Double) -> GeoPoint {
        let δ = distance / earthRadius, θ = rad(bearing)
        let φ1 = rad(start.latitude), λ1 = rad(start.longitude)
        let φ2 = asin(sin(φ1) * cos(δ) + cos(φ1) * sin(δ) * cos(θ))
        let λ2 = λ1 + atan2(sin(θ) * sin(δ) * cos(φ1), cos(δ) - sin(φ1) * sin(φ2))
        return GeoPoint(latitude: deg(φ2), longitude: normalize(deg(λ2) + 180) - 180)
    }

    /// Vincenty's inverse formula on WGS84: geodesic distance (m) and initial/final bearings
    /// (degrees). Nil for nearly antipodal points where the iteration does not converge.
    public static func vincenty(_ a: GeoPoint, _ b: GeoPoint) -> (distance: Double, initialBearing: Double, finalBearing: Double)? {
        let f = wgs84F, aAxis = wgs84A, bAxis = (1 - f) * wgs84A
        let L = rad(b.longitude - a.longitude)
        let U1 = atan((1 - f) * tan(rad(a.latitude))), U2 = atan((1 - f) * tan(rad(b.latitude)))
        let sinU1 = sin(U1), cosU1 = cos(U1), sinU2 = sin(U2), cosU2 = cos(U2)
        var λ = L
        var sinσ = 0.0, cosσ = 0.0, σ = 0.0, cos2α = 0.0, cos2σm = 0.0, sinλ = 0.0, cosλ = 0.0
        for _ in 0..<200 {
            sinλ = sin(λ); cosλ = cos(λ)
            let t1 = cosU2 * sinλ, t2 = cosU1 * sinU2 - sinU1 * cosU2 * cosλ
            sinσ = sqrt(t1 * t1 + t2 * t2)
            if sinσ == 0 { return (0, 0, 0) }   // the same point
            cosσ = sinU1 * sinU2 + cosU1 * cosU2 * cosλ
            σ = atan2(sinσ, cosσ)
            let sinα = cosU1 * cosU2 * sinλ / sinσ
            cos2α = 1 - sinα * sinα
            cos2σm = cos2α != 0 ? cosσ - 2 * sinU1 * sinU2 / cos2α : 0   // equatorial line
            let C = f / 16 * cos2α * (4 + f * (4 - 3 * cos2α))
            let λPrev = λ
            λ = L + (1 - C) * f * sinα * (σ + C * sinσ * (cos2σm + C * cosσ * (-1 + 2 * cos2σm * cos2σm)))
            if abs(λ - λPrev) < 1e-12 {
                let u2 = cos2α * (aAxis * aAxis - bAxis * bAxis) / (bAxis * bAxis)
                let A = 1 + u2 / 16384 * (4096 + u2 * (-768 + u2 * (320 - 175 * u2)))
                let B = u2 / 1024 * (256 + u2 * (-128 + u2 * (74 - 47 * u2)))
                let Δσ = B * sinσ * (cos2σm + B / 4 * (cosσ * (-1 + 2 * cos2σm * cos2σm)
                    - B / 6 * cos2σm * (-3 + 4 * sinσ * sinσ) * (-3 + 4 * cos2σm * cos2σm)))
                let s = bAxis * A * (σ - Δσ)
                let α1 = atan2(cosU2 * sinλ, cosU1 * sinU2 - sinU1 * cosU2 * cosλ)
                let α2 = atan2(cosU1 * sinλ, -sinU1 * cosU2 + cosU1 * sinU2 * cosλ)
                return (s, normalize(deg(α1)), normalize(deg(α2)))
            }
        }
        return nil
    }

    /// Where `other` is seen from `us` driving on `heading` (degrees; nil when stopped or unknown).
    public static func relation(of other: GeoPoint, from us: GeoPoint, heading: Double?,
                                abreastWithin: Double = 25) -> Relation {
        let d = distance(us, other)
        let brg = bearing(from: us, to: other)
        guard let heading, heading.isFinite else {
            return Relation(distance: d, bearing: brg, alongTrack: nil, crossTrack: nil, position: .unknown)
        }
        // Spherical cross-track / along-track distances relative to the great circle through us on `heading`.
        let δ = d / earthRadius, Δθ = rad(brg - heading)
        let xt = asin(sin(δ) * sin(Δθ))
        var at = acos(max(-1, min(1, cos(δ) / max(cos(xt), 1e-15)))) * earthRadius
        if cos(Δθ) < 0 { at = -at }
        let position: Relation.Position = abs(at) < abreastWithin ? .abreast : (at > 0 ? .ahead : .behind)
        return Relation(distance: d, bearing: brg, alongTrack: at, crossTrack: xt * earthRadius, position: position)
    }

    public struct Relation: Sendable, Equatable {
        public enum Position: String, Sendable, Codable { case ahead, behind, abreast, unknown }
        /// Metres (haversine).
        public var distance: Double
        /// Initial bearing from us to them, degrees from true north.
        public var bearing: Double
        /// Signed metres along our heading (positive: ahead); nil without a heading.
        public var alongTrack: Double?
        /// Signed metres off our line (positive: to our right); nil without a heading.
        public var crossTrack: Double?
        public var position: Position
    }
}
