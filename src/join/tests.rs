
#[test]
fn sizes() {
    eprintln!(
        "Ob {} View {} LegSum {} LegLink {} Observation {} Leg {} Path {} Scored {} Dir {} Obs {}",
        std::mem::size_of::<super::leg::Ob<'_>>(),
        std::mem::size_of::<super::view::View>(),
        std::mem::size_of::<super::path::LegSum<'_>>(),
        std::mem::size_of::<super::leg::LegLink>(),
        std::mem::size_of::<super::Observation>(),
        std::mem::size_of::<super::Leg>(),
        std::mem::size_of::<super::Path>(),
        std::mem::size_of::<super::Scored>(),
        std::mem::size_of::<super::features::DirFeatures>(),
        std::mem::size_of::<super::ObservationFeatures>(),
    );
}
