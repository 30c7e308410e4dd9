#if canImport(Glibc)
import Glibc
#endif
import JamzCore
import Testing

/// Reference values: Vincenty (1975) / Geoscience Australia's Flinders Peak → Buninyong example,
/// and GeographicLib 2.0 (Karney's algorithm, exact to nanometres) for the others.
struct GeoTests {
    static let paris = GeoPoint(latitude: 48.8566, longitude: 2.3522)
    static let london = GeoPoint(latitude: 51.5074, longitude: -0.1278)
    static func dms(_ d: Double, _ m: Double, _ s: Double) -> Double { d + m / 60 + s / 3600 }

    @Test func vincentyMatchesTheFlindersPeakExample() throws {
        let flinders = GeoPoint(latitude: -Self.dms(37, 57, 3.72030), longitude: Self.dms(144, 25, 29.52440))
        let buninyong = GeoPoint(latitude: -Self.dms(37, 39, 10.15610), longitude: Self.dms(143, 55, 35.38390))
        let r = try #require(Geo.vincenty(flinders, buninyong))
        #expect(abs(r.distance - 54_972.271) < 0.001)                        // 1 mm
        #expect(abs(r.initialBearing - Self.dms(306, 52, 5.37)) < 0.5 / 3600) // 0.5″
        #expect(abs(r.finalBearing - Self.dms(307, 10, 25.07)) < 0.5 / 3600)
    }

    @Test func parisLondon() throws {
        let v = try #require(Geo.vincenty(Self.paris, Self.london))
        #expect(abs(v.distance - 343_923.120) < 0.01)            // GeographicLib: 343 923.120 m
        #expect(abs(v.initialBearing - 329.951405) < 1e-5)
        // Haversine on the 6 371 008.8 m sphere: 343 556.53 m, 0.11 % short of the ellipsoid.
        let h = Geo.distance(Self.paris, Self.london)
        #expect(abs(h - 343_556.53) < 0.01)
        #expect(abs(h - v.distance) / v.distance < 0.005)
        #expect(abs(Geo.bearing(from: Self.paris, to: Self.london) - v.initialBearing) < 0.3)
    }

    @Test func oneDegreeOfLatitudeAtTheEquator() throws {
        let v = try #require(Geo.vincenty(GeoPoint(latitude: 0, longitude: 0), GeoPoint(latitude: 1, longitude: 0)))
        #expect(abs(v.distance - 110_574.389) < 0.001)
    }

    @Test(arguments: [0.0, 90, 180, 270, 45, 313])
    func oneKilometreStep(bearing: Double) {
        let start = GeoPoint(latitude: 45.7578, longitude: 4.8320)
        let end = Geo.destination(from: start, bearing: bearing, distance: 1000)
        #expect(abs(Geo.distance(start, end) - 1000) < 1e-6)
        #expect(abs(Geo.bearing(from: start, to: end) - bearing) < 1e-6 || abs(abs(Geo.bearing(from: start, to: end) - bearing) - 360) < 1e-6)
        if bearing == 0 {
            #expect(abs(end.longitude - start.longitude) < 1e-12)
            #expect(abs((end.latitude - start.latitude) - 1000 / Geo.earthRadius * 180 / .pi) < 1e-12)
        }
        // The ellipsoid agrees with the sphere to 0.5 % over 1 km.
        #expect(abs(Geo.vincenty(start, end)!.distance - 1000) < 5)
    }

    @Test func aheadAndBehindAlongOurHeading() {
        let us = GeoPoint(latitude: 45.0, longitude: 5.0)
        let heading = 30.0
        let ahead = Geo.destination(from: us, bearing: heading + 10, distance: 800)
        let behind = Geo.destination(from: us, bearing: heading + 180 - 5, distance: 5000)
        let abreast = Geo.destination(from: us, bearing: heading + 90, distance: 300)
        let a = Geo.relation(of: ahead, from: us, heading: heading)
        #expect(a.position == .ahead)
        #expect(abs(a.alongTrack! - 800 * cos(10 * Double.pi / 180)) < 1)
        #expect(a.crossTrack! > 0)   // to our right
        let b = Geo.relation(of: behind, from: us, heading: heading)
        #expect(b.position == .behind)
        #expect(abs(b.alongTrack! + 5000 * cos(5 * Double.pi / 180)) < 2)
        #expect(Geo.relation(of: abreast, from: us, heading: heading).position == .abreast)
        #expect(Geo.relation(of: ahead, from: us, heading: nil).position == .unknown)
    }

    @Test func validity() {
        #expect(GeoPoint(latitude: 90, longitude: -180).isValid)
        #expect(!GeoPoint(latitude: 90.0001, longitude: 0).isValid)
        #expect(!GeoPoint(latitude: 0, longitude: 180.5).isValid)
        #expect(!GeoPoint(latitude: .nan, longitude: 0).isValid)
        #expect(GeoPoint(latitude: -1.5, longitude: 2.25).description == "-1.500000,2.250000")
    }
}
