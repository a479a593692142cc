//! Details of the text format that the corpus and the zoo files do not pin down.

use spec::{Act, Layer, NetSpec};

const HEAD: &str = "name t\ninput 1 28 28\nclasses 10\n";

fn layers(body: &str) -> Vec<Layer> {
    spec::parse_checked(format!("{HEAD}{body}").as_bytes())
        .unwrap_or_else(|e| panic!("{e}"))
        .layers
}

#[test]
fn comments_blank_lines_tabs_and_crlf() {
    let text = "# header comment\r\nname t   # trailing\r\n\r\n\tinput 1 28 28\r\nclasses 10\r\n  flatten\t\r\ndense 10 # head\r\n";
    let s = spec::parse_checked(text.as_bytes()).unwrap();
    assert_eq!(
        s,
        NetSpec {
            name: "t".into(),
            input: [1, 28, 28],
            num_classes: 10,
            layers: vec![
                Layer::Flatten,
                Layer::Dense {
                    out: 10,
                    act: Act::Identity,
                    in_ch: None
                }
            ]
        }
    );
}

#[test]
fn arguments_in_any_order_and_positional_by_name() {
    let a = layers("convBn 16 stride=2 kernel=3 act=relu6\nglobalAvgPool\ndense 10\n");
    let b = layers("convBn act=relu6 kernel=3 out=16 stride=2\nglobalAvgPool\ndense 10\n");
    assert_eq!(a, b);
    assert_eq!(
        a[0],
        Layer::ConvBn {
            out: 16,
            kernel: 3,
            stride: 2,
            pad: None,
            act: Act::Relu6,
            in_ch: None
        }
    );
}

#[test]
fn stated_input_channels_that_match_are_accepted() {
    let l = layers(
        "convBn 16 kernel=3 in=1\nconvBn 32 kernel=3 in=16\nglobalAvgPool\ndense 10 in=32\n",
    );
    assert_eq!(
        l[1],
        Layer::ConvBn {
            out: 32,
            kernel: 3,
            stride: 1,
            pad: None,
            act: Act::Relu,
            in_ch: Some(16)
        }
    );
    // and they survive printing
    let s = spec::parse(
        format!("{HEAD}convBn 16 kernel=3 in=1\nglobalAvgPool\ndense 10 in=16\n").as_bytes(),
    )
    .unwrap();
    assert!(spec::print(&s).contains("dense 10 in=16"));
}

#[test]
fn pool_stride_defaults_to_the_window() {
    let l =
        layers("convBn 8 kernel=3\nmaxPool 2\navgPool 3 stride=1 pad=1\nglobalAvgPool\ndense 10\n");
    assert_eq!(
        l[1],
        Layer::MaxPool {
            size: 2,
            stride: 2,
            pad: 0
        }
    );
    assert_eq!(
        l[2],
        Layer::AvgPool {
            size: 3,
            stride: 1,
            pad: 1
        }
    );
    let shapes = spec::infer_shapes(&spec::parse(format!("{HEAD}convBn 8 kernel=3\nmaxPool 2\navgPool 3 stride=1 pad=1\nglobalAvgPool\ndense 10\n").as_bytes()).unwrap()).unwrap();
    assert_eq!(shapes[2], spec::Shape::Image { c: 8, h: 14, w: 14 });
}

#[test]
fn every_layer_kind_round_trips_with_non_default_arguments() {
    // One spec using every kind with all arguments set away from their defaults.
    let text = "name all\ninput 3 32 32\nclasses 7\n\
        conv2d 8 kernel=1 stride=1 pad=0 act=gelu in=3\n\
        convBn 16 kernel=3 stride=1 pad=1 act=sigmoid in=8\n\
        batchNorm in=16\ninstanceNorm in=16\nlayerNorm in=16\n\
        maxPool 3 stride=1 pad=1\navgPool 3 stride=1 pad=1\n\
        act hswish\ndropout 0.125\n\
        residual 16 blocks=2 stride=1 in=16\nbottleneck 32 blocks=2 stride=2 in=16\n\
        separableConv 32 stride=1 act=relu6 in=32\n\
        invertedResidual 32 expand=3 stride=1 blocks=2 in=32\n\
        mbConv 32 expand=2 kernel=5 stride=1 blocks=2 se=false act=hswish in=32\n\
        mbConvV3 40 expanded=64 kernel=3 stride=2 se=true act=hswish in=32\n\
        fusedMbConv 40 expand=2 kernel=3 stride=1 blocks=2 se=true act=relu in=40\n\
        uib 40 expand=2 start=5 mid=3 stride=1 act=relu6 in=40\n\
        fire 8 expand1=16 expand3=24 in=40\n\
        patchEmbed 24 patch=4 in=40\nlayerNorm\n\
        transformer heads=4 mlp=48 blocks=2 in=24\n\
        batchNorm in=24\ndense 7 act=swish in=24\n";
    let s = spec::parse_checked(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.layers.len(), 23);
    let kinds: std::collections::BTreeSet<&str> = s.layers.iter().map(|l| l.kind()).collect();
    // All kinds except the two shape-only ones that cannot follow a transformer (the zoo has those).
    let missing: Vec<&str> = spec::LAYER_KINDS
        .iter()
        .copied()
        .filter(|k| !kinds.contains(k))
        .collect();
    assert_eq!(missing, ["globalAvgPool", "flatten"]);
    assert_eq!(spec::parse(spec::print(&s).as_bytes()).unwrap(), s);
    // Every parameter and buffer has a unique name.
    let p = spec::params(&s).unwrap();
    let b = spec::buffers(&s).unwrap();
    let mut names: Vec<&str> = p.iter().chain(&b).map(|x| x.name.as_str()).collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n);
    let shapes = s.check().unwrap();
    assert_eq!(shapes[14], spec::Shape::Image { c: 40, h: 8, w: 8 }); // mbConvV3 stride 2
    assert_eq!(shapes[18], spec::Shape::Tokens { t: 5, d: 24 }); // 8×8 / 4² = 4 patches + CLS
}

#[test]
fn every_activation_name_parses() {
    for a in Act::ALL {
        let l = layers(&format!("flatten\ndense 10 act={}\n", a.name()));
        assert_eq!(
            l[1],
            Layer::Dense {
                out: 10,
                act: a,
                in_ch: None
            }
        );
    }
}
